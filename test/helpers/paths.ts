import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root: the nearest directory above this file that holds package.json (works from src or dist). */
export const projectRoot: string = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
})();

/** `../shared` beside the project root, as CI lays it out. */
export const sharedDir = path.resolve(projectRoot, '..', 'shared');

export function sharedPath(...parts: string[]): string {
  return path.join(sharedDir, ...parts);
}
