/**
 * The Prometheus text exposition of families read from state at each scrape: podscope's registry
 * (prom-client's, plus these families written straight into the text) and the kept label sets
 * they share.
 */
import { Registry } from 'prom-client';

/**
 * Label pairs escaped and written once, then kept: a GPU's `gpu` and `uuid` appear in hundreds of
 * series at every scrape. `with()` gives the set with one label more, kept as well.
 */
export class LabelSet {
  /** `name="value",…`, escaped as in the exposition. */
  readonly text: string;
  private readonly children = new Map<string, Map<string, LabelSet>>();
  private size = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    text?: string,
  ) {
    this.text = text ?? Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',');
  }

  with(name: string, value: string): LabelSet {
    let byValue = this.children.get(name);
    if (!byValue) this.children.set(name, (byValue = new Map()));
    let child = byValue.get(value);
    if (!child) {
      // Values come from bounded sets (kinds, reasons, a GPU's name); a cap keeps it so regardless.
      if (this.size >= MAX_LABEL_CHILDREN) {
        this.children.clear();
        this.size = 0;
        this.children.set(name, (byValue = new Map()));
      }
      child = new LabelSet({ ...this.labels, [name]: value }, `${this.text === '' ? '' : `${this.text},`}${name}="${escapeLabelValue(value)}"`);
      byValue.set(value, child);
      this.size++;
    }
    return child;
  }
}

const MAX_LABEL_CHILDREN = 256;

export interface Series {
  labels: Record<string, string> | LabelSet;
  value: number;
  /** Added to the family's name: a histogram's `_bucket`, `_sum` and `_count`. */
  suffix?: string;
}

type FamilyType = 'gauge' | 'counter' | 'histogram';

interface ReadFamily {
  name: string;
  /** `# HELP` and `# TYPE`, escaped once. */
  head: string;
  read: (out: Series[]) => void;
}

/**
 * podscope's registry: prom-client's, plus families read from state at each scrape and written
 * straight into the exposition. prom-client's Gauge and Counter validate and hash the labels of
 * every set() after a reset, then build the text through label objects and arrays; for the
 * hundreds of per-GPU series that was most of a scrape, and most of its garbage. The text is the
 * same as prom-client writes; these families come after prom-client's.
 */
export class Exposition extends Registry {
  private readonly families: ReadFamily[] = [];
  private readonly names = new Set<string>();

  addReadFamily(name: string, help: string, type: FamilyType, read: (out: Series[]) => void): void {
    if (this.names.has(name) || this.getSingleMetric(name)) throw new Error(`A metric with the name ${name} has already been registered.`);
    this.names.add(name);
    this.families.push({ name, head: `# HELP ${name} ${escapeText(help)}\n# TYPE ${name} ${type}`, read });
  }

  override registerMetric(metric: Parameters<Registry['registerMetric']>[0]): void {
    const name = (metric as unknown as { name: string }).name;
    if (this.names.has(name)) throw new Error(`A metric with the name ${name} has already been registered.`);
    super.registerMetric(metric);
  }

  override async metrics(): Promise<string> {
    const base = await super.metrics();
    const parts = base === '\n' ? [] : [base.slice(0, -1)];
    const series: Series[] = [];
    for (const f of this.families) {
      series.length = 0;
      f.read(series);
      parts.push(familyText(f, series.length > 1 ? lastOfEach(series) : series));
    }
    return `${parts.join('\n\n')}\n`;
  }
}

function familyText(f: ReadFamily, series: readonly Series[]): string {
  let text = f.head;
  for (const { labels, value, suffix } of series) {
    text += suffix ? `\n${f.name}${suffix}` : `\n${f.name}`;
    if (labels instanceof LabelSet) {
      text += labels.text === '' ? ` ${valueText(value)}` : `{${labels.text}} ${valueText(value)}`;
      continue;
    }
    let first = true;
    for (const key in labels) {
      text += `${first ? '{' : ','}${key}="${escapeLabelValue(labels[key]!)}"`;
      first = false;
    }
    text += `${first ? '' : '}'} ${valueText(value)}`;
  }
  return text;
}

/** As prom-client escapes HELP text: backslash and newline. */
function escapeText(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(s: string): string {
  return /[\\\n"]/.test(s) ? escapeText(s).replace(/"/g, '\\"') : s;
}

/** As prom-client writes a value: `Nan`, `+Inf`, `-Inf`, else the number. */
function valueText(v: number): string {
  return Number.isNaN(v) ? 'Nan' : Number.isFinite(v) ? `${v}` : v < 0 ? '-Inf' : '+Inf';
}

/**
 * A family whose series are read from state at each scrape. In podscope's {@link Exposition} it is
 * written straight into the text; in a plain prom-client Registry it is registered as a metric
 * whose get() hands the same series over. Series with the same labels keep the last value, as
 * set() would.
 */
export function readFamily(registry: Registry, name: string, help: string, type: FamilyType, read: (out: Series[]) => void): void {
  if (registry instanceof Exposition) return registry.addReadFamily(name, help, type, read);
  const metric = {
    name,
    help,
    type,
    aggregator: 'sum',
    get() {
      const values: Series[] = [];
      read(values);
      return {
        name,
        help,
        type,
        aggregator: 'sum',
        values: (values.length > 1 ? lastOfEach(values) : values).map((v) => {
          const labels = v.labels instanceof LabelSet ? v.labels.labels : v.labels;
          return v.suffix ? { labels, value: v.value, metricName: name + v.suffix } : { labels, value: v.value };
        }),
      };
    },
    reset() {},
  };
  registry.registerMetric(metric as never);
}

/** The series with the same labels kept once, with the last value (a duplicate would void the scrape). */
function lastOfEach(values: Series[]): Series[] {
  const at = new Map<string, number>();
  const out: Series[] = [];
  for (const v of values) {
    // A kept LabelSet's text is its key: made once, its hash is kept with it.
    const key = v.labels instanceof LabelSet ? (v.suffix ? `${v.suffix}\u0000${v.labels.text}` : v.labels.text) : `${v.suffix ?? ''}\u0000${Object.values(v.labels).join('\u0000')}`;
    const i = at.get(key);
    if (i === undefined) {
      at.set(key, out.length);
      out.push(v);
    } else out[i] = v;
  }
  return out;
}

/**
 * A gauge without labels that is absent from the exposition while its value is unknown (null):
 * prom-client's own Gauge always shows a label-less series, as 0 once reset, and 0 would be a
 * reading nobody took.
 */
export function optionalGauge(registry: Registry, name: string, help: string, read: () => number | null): void {
  readFamily(registry, name, help, 'gauge', (out) => {
    const value = read();
    if (value !== null) out.push({ labels: {}, value });
  });
}
