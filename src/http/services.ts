/**
 * What the HTTP layer is handed besides the pod's state: the few things a route may use that are
 * not state, each passed explicitly by main.ts.
 */
import type { ArtifactFiles } from '../state/artifacts.js';
import type { StreamCounts } from '../state/events.js';

export interface HttpServices {
  /** Opens one output file for a download (collectors/artifacts.ts); null: downloads are not served. */
  downloads: ArtifactFiles | null;
  /**
   * What each collector holds open (sockets, children, files), for /debug/connections in
   * development: read from the collectors' memory, no I/O.
   */
  connections: () => Record<string, unknown>;
  /** The /debug/events streams served: the route keeps the counts, metrics read them. */
  eventStreams: StreamCounts;
}
