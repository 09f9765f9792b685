import type { AnyMessage, SipRequest, SipResponse } from '../../message/index.js';

/** RFC 3050: the value of GATEWAY_INTERFACE, naming the dialect of CGI the script is being spoken to in. */
export const GATEWAY_INTERFACE = 'SIP-CGI/1.1';

/** What the server knows about one invocation that the message itself does not say. */
export interface SipCgiContext {
  /** This server's host name (SERVER_NAME). */
  serverName: string;
  /** The local port the message arrived on (SERVER_PORT). */
  serverPort: number;
  /** Transport the message arrived on: udp, tcp, tls, ws, wss. */
  transport: string;
  /** The previous hop (REMOTE_ADDR / REMOTE_PORT). */
  remoteAddress: string;
  remotePort: number;
  /** The user the server authenticated for this request, if any (REMOTE_USER). */
  authUser?: string;
  /** The scheme that authenticated it, e.g. Digest (AUTH_TYPE). */
  authType?: string;
  /** RFC 3050 REGISTRATIONS: the contacts currently registered for the Request-URI's address of record. */
  registrations?: readonly string[];
}

/** A response invocation also names the response, so that the script can forward it by token later. */
export interface SipCgiResponseContext extends SipCgiContext {
  /** Passed as RESPONSE_TOKEN; the script's `CGI-FORWARD-RESPONSE <token> SIP/2.0` refers back to it. */
  responseToken: string;
}

/**
 * Header fields that are not exported as SIP_* variables. Credentials stay with the server, as in HTTP CGI (RFC 3875
 * §4.1.18): the server has already checked them and says who the user is in REMOTE_USER. The body's length and type
 * have their own variables.
 */
const NOT_EXPORTED = new Set(['authorization', 'proxy-authorization', 'content-length', 'content-type']);

/** The metavariables for a request invocation. */
export function requestEnvironment(req: SipRequest, ctx: SipCgiContext, serverSoftware: string): Record<string, string> {
  return messageEnvironment(req, req, ctx, serverSoftware);
}

/** The metavariables for a response invocation: the response is the message, the request still names the transaction. */
export function responseEnvironment(
  req: SipRequest,
  res: SipResponse,
  cookie: string | undefined,
  ctx: SipCgiResponseContext,
  serverSoftware: string,
): Record<string, string> {
  const env = messageEnvironment(req, res, ctx, serverSoftware);
  env.RESPONSE_STATUS = String(res.status);
  env.RESPONSE_REASON = clean(res.reason);
  env.RESPONSE_TOKEN = ctx.responseToken;
  if (cookie !== undefined) env.SCRIPT_COOKIE = cookie;
  return env;
}

function messageEnvironment(req: SipRequest, message: AnyMessage, ctx: SipCgiContext, serverSoftware: string): Record<string, string> {
  const env: Record<string, string> = {
    GATEWAY_INTERFACE,
    SERVER_SOFTWARE: serverSoftware,
    SERVER_NAME: ctx.serverName,
    SERVER_PORT: String(ctx.serverPort),
    SERVER_PROTOCOL: 'SIP/2.0',
    // Not in RFC 3050 (it predates the choice of transports mattering to services); named like the others.
    SERVER_TRANSPORT: ctx.transport.toUpperCase(),
    REMOTE_ADDR: ctx.remoteAddress,
    // CGI lets the server put the address here instead of a name; a DNS lookup per message is not worth its latency.
    REMOTE_HOST: ctx.remoteAddress,
    REMOTE_PORT: String(ctx.remotePort),
    REQUEST_METHOD: req.method,
    REQUEST_URI: clean(req.uri.toString()),
  };
  if (ctx.authUser !== undefined) {
    env.REMOTE_USER = clean(ctx.authUser);
    env.AUTH_TYPE = ctx.authType ?? 'Digest';
  }
  if (ctx.registrations !== undefined) env.REGISTRATIONS = clean(ctx.registrations.join(', '));
  if (message.body.length > 0) {
    env.CONTENT_LENGTH = String(message.body.length);
    const type = message.contentType;
    if (type !== undefined) env.CONTENT_TYPE = clean(type);
  }
  for (const [name, value] of headerVariables(message)) env[name] = value;
  return env;
}

/**
 * One SIP_* variable per header name: canonical long form (compact forms expanded), upper-cased, every character that
 * cannot appear in a shell variable name turned into '_'. Repeated fields are joined with ", ", which §7.3.1 makes
 * equivalent to separate fields for list headers.
 */
function headerVariables(message: AnyMessage): Map<string, string> {
  const out = new Map<string, string>();
  for (const field of message.headers.fields) {
    if (NOT_EXPORTED.has(field.name)) continue;
    const name = 'SIP_' + field.name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
    const value = clean(field.value);
    const before = out.get(name);
    out.set(name, before === undefined ? value : `${before}, ${value}`);
  }
  return out;
}

/** An environment string cannot hold NUL (exec would refuse the whole environment); nothing else needs changing. */
function clean(s: string): string {
  return s.indexOf('\0') < 0 ? s : s.replace(/\0/g, '');
}
