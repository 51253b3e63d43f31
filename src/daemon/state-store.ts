/**
 * The state store: the only writer of the state file (and of the public
 * index of trees beside the socket). Everything that changes what the
 * daemon remembers is a Transition, applied here and saved atomically
 * before anyone acts on it, so a crash at any point leaves a state that a
 * restart converges from.
 */
import { CgviewError } from '../errors.js';
import {
  loadState,
  localPins,
  type RootsIndex,
  type State,
  saveState,
  setLocalPins,
  type TagRoot,
  type ViewPin,
  writeFileAtomic,
} from '../tree/state.js';
import type { Logger } from './log.js';

export type Transition =
  /** First start: the default tree (if any) is added, and that is remembered so removing it sticks. */
  | { kind: 'initialize'; root?: TagRoot }
  /** S1 (tag: a new tagged root, with its first pin) and S3 (inherit). */
  | { kind: 'tag' | 'pin'; root: TagRoot; rel: string; pin: ViewPin; inherit: boolean }
  | { kind: 'unpin'; root: TagRoot; rel: string; name: string; inherited: boolean }
  /** The tree is emptied (its last view went); the root is forgotten once it is empty. */
  | { kind: 'untagging'; root: TagRoot }
  | { kind: 'untagged'; root: TagRoot }
  /** S4: directories gone took their own (non-inherited) pins along. */
  | { kind: 'dropLocal'; root: TagRoot; rels: string[] };

export class StateStore {
  readonly #file: string;
  readonly #indexFile: string | undefined;
  readonly #log: Logger;
  readonly #state: State;
  readonly #privateDir: string | undefined;

  constructor(file: string, indexFile: string | undefined, log: Logger, privateDir?: string) {
    this.#file = file;
    this.#indexFile = indexFile;
    this.#privateDir = privateDir;
    this.#log = log;
    this.#state = loadState(file);
  }

  /** The state as saved (read it, never change it: commit a Transition). */
  get state(): Readonly<State> {
    return this.#state;
  }

  /**
   * Applies transitions and saves the state (and the index) atomically. They
   * are applied to a copy first and only that copy is saved: if the save
   * fails (E_SYSCALL), the live state is as it was and nothing has been done
   * on the strength of the change. Once saved, the same transitions are
   * applied to the live state, whose roots are the RootRuntimes' own objects.
   */
  commit(...ts: Transition[]): void {
    // One structured clone of state and transitions together keeps their
    // shared objects shared (a transition's root is one of the copy's roots).
    const copy = structuredClone({ state: this.#state, ts });
    for (const t of copy.ts) applyTransition(copy.state, t);
    try {
      saveState(this.#file, copy.state);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      this.#log('error', 'cannot save the state file: the change is not made', {
        file: this.#file,
        error: err.message,
      });
      throw new CgviewError(
        'E_SYSCALL',
        `cannot save the state file ${this.#file}: ${err.code ?? err.message}`,
        {
          cause: e,
          ...(typeof err.errno === 'number' ? { errno: -err.errno } : {}),
          path: this.#file,
          hint: 'the daemon goes on with the state as it was saved last',
        },
      );
    }
    for (const t of ts) applyTransition(this.#state, t);
    this.writeIndex();
  }

  /** The public index of trees (see RootsIndex), readable by every user. */
  writeIndex(): void {
    if (!this.#indexFile) return;
    const index: RootsIndex = {
      roots: this.#state.roots
        .filter((r) => !r.untagging)
        .map((r) => ({
          dir: r.dir,
          cgroup: r.cgroup,
          // Built-in views only: a user view's object path is not for everyone.
          inherit: r.inherit
            .filter((p) => /^[a-z0-9_]+$/.test(p.view))
            .map((p) => ({ name: p.name, view: p.view })),
        })),
      ...(this.#privateDir !== undefined ? { privateDir: this.#privateDir } : {}),
    };
    try {
      writeFileAtomic(this.#indexFile, `${JSON.stringify(index)}\n`, 0o644, 0o755);
    } catch (e) {
      this.#log('warn', 'cannot write the index of trees', {
        file: this.#indexFile,
        error: (e as Error).message,
      });
    }
  }
}

/** What a transition changes in a state (in place). */
function applyTransition(s: State, t: Transition): void {
  switch (t.kind) {
    case 'initialize':
      if (t.root) s.roots.push(t.root);
      s.initialized = true;
      break;
    case 'tag':
    case 'pin':
      if (t.kind === 'tag') s.roots.push(t.root);
      if (t.inherit) t.root.inherit.push(t.pin);
      else setLocalPins(t.root, t.rel, [...localPins(t.root, t.rel), t.pin]);
      break;
    case 'unpin':
      if (t.inherited) t.root.inherit = t.root.inherit.filter((p) => p.name !== t.name);
      else {
        setLocalPins(
          t.root,
          t.rel,
          localPins(t.root, t.rel).filter((p) => p.name !== t.name),
        );
      }
      break;
    case 'untagging':
      t.root.untagging = true;
      break;
    case 'untagged':
      s.roots = s.roots.filter((r) => r !== t.root);
      break;
    case 'dropLocal':
      for (const r of t.rels) setLocalPins(t.root, r, []);
      break;
  }
}
