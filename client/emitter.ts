// A small typed emitter: each event name has one payload type, so a face subscribing to "message" gets
// a ShownMessage and nothing else. Listeners run synchronously, in the order they subscribed, at the
// moment the core emits: what a listener prints comes out exactly where the core's work put it.

export type Listener<T> = (payload: T) => void;

export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Array<Listener<never>>>();

  /** Subscribes; returns the function that unsubscribes. */
  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    const list = this.listeners.get(name) ?? [];
    list.push(listener as Listener<never>);
    this.listeners.set(name, list);
    return () => this.off(name, listener);
  }

  off<K extends keyof Events>(name: K, listener: Listener<Events[K]>): void {
    const list = this.listeners.get(name);
    if (!list) return;
    const at = list.indexOf(listener as Listener<never>);
    if (at !== -1) list.splice(at, 1);
  }

  /** Calls every listener of `name` with `payload`; a listener's exception reaches the emitting code. */
  emit<K extends keyof Events>(name: K, payload: Events[K]): void {
    // A copy: a listener may unsubscribe (itself or another) while the event is being delivered.
    for (const listener of [...(this.listeners.get(name) ?? [])]) {
      (listener as Listener<Events[K]>)(payload);
    }
  }

  /** Whether anyone listens to `name` (work done only for a listener can be skipped). */
  has<K extends keyof Events>(name: K): boolean {
    return (this.listeners.get(name)?.length ?? 0) > 0;
  }
}
