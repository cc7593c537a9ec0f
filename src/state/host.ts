/** Host memory, disks and podscope's own memory as the host collector last sampled them. */
import type { HostSnapshot } from '../shared/host.js';

export class HostState {
  private snap: HostSnapshot = { sampled_at: null, memory: null, disks: [], process: null, event_loop: null };

  snapshot(): HostSnapshot {
    return this.snap;
  }

  set(snapshot: HostSnapshot): void {
    this.snap = snapshot;
  }
}

/** The host sample as readers see it. */
export type HostReader = Readonly<Pick<HostState, 'snapshot'>>;
