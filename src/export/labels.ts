/**
 * Workload labels from a cgroup path (docs/metrics.md "Labels"): the
 * systemd unit, the container (id and runtime) and the Kubernetes pod (uid,
 * QoS class), for both kubelet cgroup drivers and the usual runtimes. Pure:
 * the path as the cgroup label shows it ('/system.slice/ssh.service', '/'
 * for the root), no I/O.
 *
 * Every label comes from the deepest path component that carries it, so a
 * cgroup below a container (podman's `container` sub-cgroup, a delegated
 * service's children) has its container's labels, and a pod inside a
 * container (kind, k3d) has the pod's.
 */

export interface WorkloadLabels {
  unit?: string;
  container_id?: string;
  container_runtime?: string;
  pod_uid?: string;
  qos_class?: string;
}

const UNIT_SUFFIX = /\.(?:service|scope|slice|socket|mount|swap|target|device|timer|path|automount)$/;
/** A full container id: 64 hex digits (docker, containerd, cri-o, podman all use sha256 ids). */
const HEX64 = /^[0-9a-f]{64}$/;
/** `<runtime prefix>-<id>.scope` (systemd driver). conmon scopes are the monitor, not the container. */
const SCOPE = /^(docker|cri-containerd|crio|libpod|runc)-(.+)\.scope$/;
/** cgroupfs driver names with a runtime prefix: `crio-<id>`, `libpod-<id>`, `docker-<id>`. */
const PREFIXED = /^(docker|cri-containerd|crio|libpod)-([0-9a-f]{64})$/;
/** systemd driver pod slice: `[<prefix>-]kubepods[-burstable|-besteffort]-pod<uid>.slice`. */
const POD_SLICE = /^(?:.+-)?kubepods(?:-(burstable|besteffort))?-pod([0-9a-fA-F_-]+)\.slice$/;
/** systemd driver QoS slice (no pod): `[<prefix>-]kubepods[-burstable|-besteffort].slice`. */
const QOS_SLICE = /^(?:.+-)?kubepods(?:-(burstable|besteffort))?\.slice$/;
/** cgroupfs driver pod directory. */
const POD_DIR = /^pod([0-9a-fA-F_-]+)$/;

const RUNTIME: Record<string, string> = {
  docker: 'docker',
  'cri-containerd': 'containerd',
  crio: 'cri-o',
  libpod: 'podman',
  runc: 'runc',
};

const QOS: Record<string, string> = { burstable: 'Burstable', besteffort: 'BestEffort' };

/** Pod uids are dashed in the API (kube_pod_info{uid}); the systemd driver writes '_' for '-'. */
export function normalizePodUid(uid: string): string {
  return uid.replaceAll('_', '-').toLowerCase();
}

/** Workload labels of a cgroup path ('/a/b', '/' for the root). Absent labels are absent keys. */
export function workloadLabels(cgroupPath: string): WorkloadLabels {
  const out: WorkloadLabels = {};
  const parts = cgroupPath.split('/').filter((p) => p !== '');
  // Inside a kubepods hierarchy of the cgroupfs driver: where it starts, and the QoS level seen.
  let kubepodsAt = -1;
  let podAt = -1;
  for (let i = 0; i < parts.length; i++) {
    const c = parts[i]!;
    if (UNIT_SUFFIX.test(c)) out.unit = c;
    let m = POD_SLICE.exec(c);
    if (m) {
      out.pod_uid = normalizePodUid(m[2]!);
      out.qos_class = m[1] ? QOS[m[1]]! : 'Guaranteed';
      podAt = i;
      delete out.container_id;
      delete out.container_runtime;
      continue;
    }
    m = QOS_SLICE.exec(c);
    if (m) {
      // A new kubepods hierarchy (nested in a container: kind): what was above is not this pod's.
      if (!m[1]) {
        delete out.pod_uid;
        delete out.qos_class;
      } else out.qos_class = QOS[m[1]]!;
      continue;
    }
    if (c === 'kubepods') {
      kubepodsAt = i;
      delete out.pod_uid;
      delete out.qos_class;
      continue;
    }
    if (kubepodsAt >= 0 && i === kubepodsAt + 1 && (c === 'burstable' || c === 'besteffort')) {
      out.qos_class = QOS[c]!;
      continue;
    }
    if (kubepodsAt >= 0 && (i === kubepodsAt + 1 || i === kubepodsAt + 2)) {
      m = POD_DIR.exec(c);
      if (m && (i === kubepodsAt + 1 || out.qos_class !== undefined)) {
        out.pod_uid = normalizePodUid(m[1]!);
        if (i === kubepodsAt + 1) out.qos_class = 'Guaranteed';
        podAt = i;
        continue;
      }
    }
    m = SCOPE.exec(c);
    if (m && !m[2]!.startsWith('conmon-')) {
      out.container_id = m[2]!;
      out.container_runtime = RUNTIME[m[1]!]!;
      continue;
    }
    m = PREFIXED.exec(c);
    if (m) {
      out.container_id = m[2]!;
      out.container_runtime = RUNTIME[m[1]!]!;
      continue;
    }
    if (HEX64.test(c)) {
      // A bare id: docker's cgroupfs driver (/docker/<id>), or a container of a
      // cgroupfs-driver pod, whose runtime the path does not say.
      const prev = parts[i - 1];
      if (prev === 'docker') {
        out.container_id = c;
        out.container_runtime = 'docker';
      } else if (podAt === i - 1) {
        out.container_id = c;
        delete out.container_runtime;
      }
    }
  }
  return out;
}
