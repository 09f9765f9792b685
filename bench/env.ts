/** A positive number from the environment (BENCH_* settings), or the default when it is unset or not one. */
export function envNumber(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}
