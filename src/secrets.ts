/**
 * Secret handling shared by config, logs and responses.
 *
 * Two complementary rules: a *name* rule (an environment variable whose name says KEY, TOKEN,
 * SECRET, PASSWORD, CREDENTIAL, AUTH or HEADERS holds a secret: OTEL_EXPORTER_OTLP_HEADERS carries
 * a collector's API key), and a *value* rule (once a value is known
 * to be secret, it is scrubbed from any text that leaves the process, whatever field it hides in).
 */

export const REDACTED = '[REDACTED]';

const SECRET_NAME = /KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH|PRIVATE|HEADERS/i;

/**
 * podscope's own variables whose names say KEY but whose values are not secrets. The name rule
 * would otherwise scrub PODSCOPE_JOB_ID_KEY's value (`job_id`) out of every log line and answer.
 */
const NOT_SECRET = new Set(['PODSCOPE_JOB_ID_KEY']);

/** True when a variable or field name says it holds a secret. */
export function isSecretName(name: string): boolean {
  return SECRET_NAME.test(name) && !NOT_SECRET.has(name);
}

function headerValues(list: string): string[] {
  return list.split(',').flatMap((item) => {
    const value = item.slice(item.indexOf('=') + 1).trim();
    if (!item.includes('=') || !value) return [];
    try {
      return [value, decodeURIComponent(value)];
    } catch {
      return [value];
    }
  });
}

const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^/@\s:]*):([^/@\s]*)@/gi;

/** Replaces the password of every `scheme://user:pass@host` inside a string. */
export function redactUrlCredentials(text: string): string {
  return text.replace(URL_USERINFO, (_m, scheme: string, user: string) => `${scheme}${user}:${REDACTED}@`);
}

/** The value to show for an environment variable: redacted by name, URL passwords masked. */
export function redactEnvValue(name: string, value: string): string {
  if (isSecretName(name)) return REDACTED;
  return redactUrlCredentials(value);
}

const BEARER = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/gi;

/** A cheap test before the bearer regex: most lines contain neither word. */
function mayHoldCredential(text: string): boolean {
  return (text.includes('earer') || text.includes('EARER') || text.includes('asic') || text.includes('ASIC')) && /bearer|basic/i.test(text);
}

/**
 * Scrubs known secret values out of text. Values shorter than {@link MIN_SECRET_LENGTH}
 * characters, and plain booleans, are not scrubbed: replacing every "1" or "true" in a log would
 * destroy it without protecting anything worth the name.
 */
export class Scrubber {
  static readonly MIN_SECRET_LENGTH = 6;
  private readonly needles: string[];

  constructor(values: Iterable<string>) {
    const set = new Set<string>();
    for (const raw of values) {
      const v = raw.trim();
      if (v.length < Scrubber.MIN_SECRET_LENGTH || /^(true|false|yes|no|on|off)$/i.test(v)) continue;
      set.add(v);
      // The same secret as it appears inside a JSON string literal.
      const escaped = JSON.stringify(v).slice(1, -1);
      if (escaped !== v) set.add(escaped);
    }
    // Longest first, so a secret that contains another is replaced whole.
    this.needles = [...set].sort((a, b) => b.length - a.length);
  }

  /** Secret values found by name in an environment. */
  static fromEnv(env: Record<string, string | undefined>, extra: Array<string | undefined> = []): Scrubber {
    const values: string[] = [];
    for (const [name, value] of Object.entries(env)) {
      if (!value || !isSecretName(name)) continue;
      values.push(value);
      // `key=value,…` lists (OTLP headers): each value is a secret of its own, decoded as sent.
      if (/HEADERS/i.test(name)) values.push(...headerValues(value));
    }
    for (const v of extra) if (v) values.push(v);
    return new Scrubber(values);
  }

  get size(): number {
    return this.needles.length;
  }

  /** Text with every known secret, bearer credential and URL password replaced by [REDACTED]. */
  scrub(text: string): string {
    let out = text;
    for (const needle of this.needles) {
      if (out.includes(needle)) out = out.split(needle).join(REDACTED);
    }
    if (out.includes('://')) out = redactUrlCredentials(out);
    if (mayHoldCredential(out)) out = out.replace(BEARER, (_m, kind: string) => `${kind} ${REDACTED}`);
    return out;
  }

  /** Whether the text holds one of the known secret values. */
  containsSecret(text: string): boolean {
    for (const needle of this.needles) if (text.includes(needle)) return true;
    return false;
  }

  /** Replaces only the known secret values: the last guard on every response body. */
  scrubValues(text: string): string {
    let out = text;
    for (const needle of this.needles) if (out.includes(needle)) out = out.split(needle).join(REDACTED);
    return out;
  }

  /** Fast check used on hot paths before paying for {@link scrub}. */
  needsScrub(text: string): boolean {
    for (const needle of this.needles) if (text.includes(needle)) return true;
    return text.includes('://') || mayHoldCredential(text);
  }
}
