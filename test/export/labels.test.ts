/** The workload labels of a cgroup path (src/export/labels.ts): pure, no kernel. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizePodUid, workloadLabels } from '../../src/export/labels.js';

const ID = 'd1f0a8b3c2e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0';
const UID = '5b7c1f7e-1a2b-4c3d-8e9f-0a1b2c3d4e5f';
const UID_ = UID.replaceAll('-', '_');

describe('workloadLabels', () => {
  it('systemd units: the deepest unit of the path', () => {
    assert.deepEqual(workloadLabels('/'), {});
    assert.deepEqual(workloadLabels('/system.slice'), { unit: 'system.slice' });
    assert.deepEqual(workloadLabels('/system.slice/ssh.service'), { unit: 'ssh.service' });
    assert.deepEqual(workloadLabels('/system.slice/foo.service/worker'), { unit: 'foo.service' });
    assert.deepEqual(workloadLabels('/user.slice/user-1000.slice/session-3.scope'), {
      unit: 'session-3.scope',
    });
    assert.deepEqual(workloadLabels('/user.slice/user-1000.slice/user@1000.service/app.slice/dbus.socket'), {
      unit: 'dbus.socket',
    });
    assert.deepEqual(workloadLabels('/system.slice/-.mount'), { unit: '-.mount' });
    // Not units: a dot elsewhere, a suffix the unit types do not have.
    assert.deepEqual(workloadLabels('/my.job/x.services'), {});
    assert.deepEqual(workloadLabels('/a b/c"d'), {});
  });

  it('kubelet, systemd driver: QoS class, pod uid (dashed), containerd / cri-o / docker containers', () => {
    const pod = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_}.slice`;
    assert.deepEqual(workloadLabels('/kubepods.slice'), { unit: 'kubepods.slice' });
    assert.deepEqual(workloadLabels('/kubepods.slice/kubepods-burstable.slice'), {
      unit: 'kubepods-burstable.slice',
      qos_class: 'Burstable',
    });
    assert.deepEqual(workloadLabels(pod), {
      unit: `kubepods-burstable-pod${UID_}.slice`,
      pod_uid: UID,
      qos_class: 'Burstable',
    });
    assert.deepEqual(workloadLabels(`${pod}/cri-containerd-${ID}.scope`), {
      unit: `cri-containerd-${ID}.scope`,
      pod_uid: UID,
      qos_class: 'Burstable',
      container_id: ID,
      container_runtime: 'containerd',
    });
    assert.deepEqual(workloadLabels(`/kubepods.slice/kubepods-pod${UID_}.slice/crio-${ID}.scope`), {
      unit: `crio-${ID}.scope`,
      pod_uid: UID,
      qos_class: 'Guaranteed',
      container_id: ID,
      container_runtime: 'cri-o',
    });
    // conmon is cri-o's monitor, not the container.
    assert.deepEqual(
      workloadLabels(
        `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_}.slice/crio-conmon-${ID}.scope`,
      ),
      { unit: `crio-conmon-${ID}.scope`, pod_uid: UID, qos_class: 'BestEffort' },
    );
    assert.deepEqual(workloadLabels(`/kubepods.slice/kubepods-pod${UID_}.slice/docker-${ID}.scope`), {
      unit: `docker-${ID}.scope`,
      pod_uid: UID,
      qos_class: 'Guaranteed',
      container_id: ID,
      container_runtime: 'docker',
    });
  });

  it('kubelet, cgroupfs driver: /kubepods/<qos>/pod<uid>/<id>', () => {
    assert.deepEqual(workloadLabels('/kubepods'), {});
    assert.deepEqual(workloadLabels('/kubepods/burstable'), { qos_class: 'Burstable' });
    assert.deepEqual(workloadLabels(`/kubepods/besteffort/pod${UID}`), {
      pod_uid: UID,
      qos_class: 'BestEffort',
    });
    assert.deepEqual(workloadLabels(`/kubepods/burstable/pod${UID}/${ID}`), {
      pod_uid: UID,
      qos_class: 'Burstable',
      container_id: ID,
    });
    assert.deepEqual(workloadLabels(`/kubepods/pod${UID}/${ID}`), {
      pod_uid: UID,
      qos_class: 'Guaranteed',
      container_id: ID,
    });
    assert.deepEqual(workloadLabels(`/kubepods/burstable/pod${UID}/crio-${ID}`), {
      pod_uid: UID,
      qos_class: 'Burstable',
      container_id: ID,
      container_runtime: 'cri-o',
    });
    // Static pods have a 32-digit hash as uid.
    assert.deepEqual(workloadLabels('/kubepods/burstable/pod0123456789abcdef0123456789abcdef'), {
      pod_uid: '0123456789abcdef0123456789abcdef',
      qos_class: 'Burstable',
    });
    // Not a pod: a "pod..." directory outside kubepods, or a QoS name without kubepods.
    assert.deepEqual(workloadLabels(`/podcast/pod${UID}`), {});
    assert.deepEqual(workloadLabels('/burstable'), {});
  });

  it('a kubelet in a container (kind): the pod of the inner hierarchy, the inner container', () => {
    const p = `/system.slice/docker-${ID}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod${UID_}.slice/cri-containerd-${'a'.repeat(64)}.scope`;
    assert.deepEqual(workloadLabels(p), {
      unit: `cri-containerd-${'a'.repeat(64)}.scope`,
      pod_uid: UID,
      qos_class: 'Burstable',
      container_id: 'a'.repeat(64),
      container_runtime: 'containerd',
    });
    // The node container itself: docker, no pod.
    assert.deepEqual(workloadLabels(`/system.slice/docker-${ID}.scope/kubelet.slice`), {
      unit: 'kubelet.slice',
      container_id: ID,
      container_runtime: 'docker',
    });
  });

  it('docker, podman, plain runc outside Kubernetes', () => {
    assert.deepEqual(workloadLabels(`/system.slice/docker-${ID}.scope`), {
      unit: `docker-${ID}.scope`,
      container_id: ID,
      container_runtime: 'docker',
    });
    assert.deepEqual(workloadLabels(`/docker/${ID}`), { container_id: ID, container_runtime: 'docker' });
    assert.deepEqual(workloadLabels(`/machine.slice/libpod-${ID}.scope`), {
      unit: `libpod-${ID}.scope`,
      container_id: ID,
      container_runtime: 'podman',
    });
    // podman's inner cgroup: the container's labels.
    assert.deepEqual(workloadLabels(`/machine.slice/libpod-${ID}.scope/container`), {
      unit: `libpod-${ID}.scope`,
      container_id: ID,
      container_runtime: 'podman',
    });
    assert.deepEqual(workloadLabels(`/machine.slice/libpod-conmon-${ID}.scope`), {
      unit: `libpod-conmon-${ID}.scope`,
    });
    assert.deepEqual(workloadLabels(`/libpod_parent/libpod-${ID}`), {
      container_id: ID,
      container_runtime: 'podman',
    });
    assert.deepEqual(
      workloadLabels(`/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope`),
      { unit: `libpod-${ID}.scope`, container_id: ID, container_runtime: 'podman' },
    );
    // runc --systemd-cgroup with cgroupsPath system.slice:runc:mybox
    assert.deepEqual(workloadLabels('/system.slice/runc-mybox.scope'), {
      unit: 'runc-mybox.scope',
      container_id: 'mybox',
      container_runtime: 'runc',
    });
    // A 64-hex name with no runtime or pod around it is not taken for a container.
    assert.deepEqual(workloadLabels(`/jobs/${ID}`), {});
    // Short or upper-case ids are not docker's.
    assert.deepEqual(workloadLabels('/docker/abc123'), {});
  });

  it('pod uids: dashed and lower case', () => {
    assert.equal(normalizePodUid(UID_), UID);
    assert.equal(normalizePodUid(UID.toUpperCase()), UID);
  });
});
