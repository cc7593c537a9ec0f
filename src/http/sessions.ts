/**
 * Browser sessions: a person gives PODSCOPE_TOKEN once on the login page and gets a session
 * cookie instead, so the token never sits in a URL, a page or the browser's storage. Sessions
 * live in memory only (a restart logs everyone out), are bounded in number, and expire.
 */
import { randomBytes } from 'node:crypto';

export const SESSION_COOKIE = 'podscope_session';
/** How long a session lasts after login. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
/** Sessions kept at most; the oldest is dropped to make room. */
export const MAX_SESSIONS = 100;

export class SessionStore {
  private readonly sessions = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A new session id, valid for SESSION_TTL_MS. */
  open(): string {
    this.prune();
    while (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    const id = randomBytes(32).toString('base64url');
    this.sessions.set(id, this.now() + SESSION_TTL_MS);
    return id;
  }

  /** Whether the id names a session that has not expired. */
  valid(id: string | undefined): boolean {
    if (!id) return false;
    const until = this.sessions.get(id);
    if (until === undefined) return false;
    if (this.now() >= until) {
      this.sessions.delete(id);
      return false;
    }
    return true;
  }

  close(id: string | undefined): void {
    if (id) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private prune(): void {
    const now = this.now();
    for (const [id, until] of this.sessions) if (now >= until) this.sessions.delete(id);
  }
}

/** The session id a Cookie header carries, if any. */
export function sessionFromCookie(cookie: string | undefined): string | undefined {
  if (!cookie) return undefined;
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === SESSION_COOKIE) {
      const v = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{1,100}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

/** The Set-Cookie value for a session (`Secure` when the browser reached podscope over https). */
export function sessionCookie(id: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_TTL_MS / 1000}${secure ? '; Secure' : ''}`;
}

/** The Set-Cookie value that removes the session cookie. */
export function clearedCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secure ? '; Secure' : ''}`;
}
