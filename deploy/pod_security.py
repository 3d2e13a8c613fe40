"""Check the pod templates of Kubernetes manifests against Pod Security "restricted", offline.

Written from the Pod Security Standards (kubernetes.io/docs/concepts/security/
pod-security-standards, policy version "latest"): every control of "baseline" and
"restricted", for pods and for the pod templates of workload resources. Two rules of this
project come on top and are named as such: a read-only root filesystem and no service account
token. It stands in for the admission controller where there is no cluster (CI); a namespace
labelled like kubernetes/namespace.yaml enforces the real thing.

    python -m deploy.pod_security [--uid N] FILE...   # exit 1 and one line per violation
"""

import argparse
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

# Where each kind keeps its pod spec.
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
ALLOWED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
}
ALLOWED_SELINUX_TYPES = {
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
}
ALLOWED_PROFILES = {"RuntimeDefault", "Localhost"}  # seccomp and AppArmor
# Docker's default set, which "baseline" lets a container add back.
BASELINE_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def _get(node: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            yield f"{field}[{container.get('name', '?')}]", container


def pod_violations(
    spec: dict[str, Any], annotations: dict[str, str], *, uid: int | None = None
) -> list[str]:
    """Every way the pod spec breaks Pod Security "restricted" or this project's rules."""
    return baseline(spec, annotations) + restricted(spec) + project_rules(spec, uid)


def _contexts(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The pod's securityContext and each container's, with where they are."""
    pod = [("pod", spec.get("securityContext") or {})]
    return pod + [(name, c.get("securityContext") or {}) for name, c in _containers(spec)]


def baseline(spec: dict[str, Any], annotations: dict[str, str]) -> list[str]:
    """The controls of the "baseline" profile (restricted includes them)."""
    found: list[str] = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"{field} must be unset or false")
    for where, sc in _contexts(spec):
        if _get(sc, "windowsOptions", "hostProcess"):
            found.append(f"{where}: windowsOptions.hostProcess must be unset or false")
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("type", "") not in ALLOWED_SELINUX_TYPES:
            found.append(f"{where}: seLinuxOptions.type {selinux['type']!r} is not allowed")
        for field in ("user", "role"):
            if selinux.get(field):
                found.append(f"{where}: seLinuxOptions.{field} must be unset")
        apparmor = _get(sc, "appArmorProfile", "type")
        if apparmor is not None and apparmor not in ALLOWED_PROFILES:
            found.append(f"{where}: appArmorProfile.type must be RuntimeDefault or Localhost")
        if _get(sc, "seccompProfile", "type") == "Unconfined":
            found.append(f"{where}: seccompProfile.type must not be Unconfined")
    for key, value in annotations.items():
        if key.startswith(APPARMOR_ANNOTATION) and not (
            value == "runtime/default" or value.startswith("localhost/")
        ):
            found.append(f"annotation {key}: must be runtime/default or localhost/*")
    for sysctl in _get(spec, "securityContext", "sysctls") or []:
        if sysctl.get("name") not in SAFE_SYSCTLS:
            found.append(f"pod: sysctl {sysctl.get('name')} is not in the safe set")
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            found.append(f"volume {volume.get('name')}: hostPath volumes are not allowed")
    for name, container in _containers(spec):
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            found.append(f"{name}: privileged must be unset or false")
        if sc.get("procMount", "Default") != "Default":
            found.append(f"{name}: procMount must be unset or Default")
        added = set(_get(sc, "capabilities", "add") or []) - BASELINE_CAPABILITIES
        if added:
            found.append(f"{name}: capabilities.add beyond the default set: {sorted(added)}")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                found.append(f"{name}: hostPort {port['hostPort']} must be unset or 0")
    return found


def restricted(spec: dict[str, Any]) -> list[str]:
    """The controls "restricted" adds to "baseline"."""
    found: list[str] = []
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"} - {"hostPath"}  # hostPath: reported by baseline
        if not kinds <= ALLOWED_VOLUME_TYPES:
            found.append(
                f"volume {volume.get('name')}: type {', '.join(sorted(kinds))} not allowed"
            )
    for where, sc in _contexts(spec):
        if sc.get("runAsUser") == 0:
            found.append(f"{where}: runAsUser must not be 0 (root)")
    pod_sc = spec.get("securityContext") or {}
    pod_non_root = pod_sc.get("runAsNonRoot") is True
    pod_seccomp = _get(pod_sc, "seccompProfile", "type") in ALLOWED_PROFILES
    for name, container in _containers(spec):
        sc = container.get("securityContext") or {}
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: allowPrivilegeEscalation must be false")
        non_root = sc.get("runAsNonRoot")
        if non_root is False or (non_root is None and not pod_non_root):
            found.append(f"{name}: runAsNonRoot must be true (in the pod or the container)")
        seccomp = _get(sc, "seccompProfile", "type")
        if seccomp not in ALLOWED_PROFILES and not (seccomp is None and pod_seccomp):
            found.append(f"{name}: seccompProfile.type must be RuntimeDefault or Localhost")
        if "ALL" not in (_get(sc, "capabilities", "drop") or []):
            found.append(f"{name}: capabilities.drop must include ALL")
        added = set(_get(sc, "capabilities", "add") or []) - {"NET_BIND_SERVICE"}
        if added:
            found.append(f"{name}: capabilities.add may hold only NET_BIND_SERVICE")
    return found


def project_rules(spec: dict[str, Any], uid: int | None) -> list[str]:
    """This project's rules beyond Pod Security: nothing writes to the image, no pod holds a
    Kubernetes API token (agents run in the workers), and every pod runs as the image's user."""
    found: list[str] = []
    for name, container in _containers(spec):
        if _get(container, "securityContext", "readOnlyRootFilesystem") is not True:
            found.append(f"{name}: readOnlyRootFilesystem must be true (project rule)")
    if spec.get("automountServiceAccountToken") is not False:
        found.append("automountServiceAccountToken must be false (project rule)")
    if uid is not None:
        for where, sc in _contexts(spec):
            if sc.get("runAsUser") not in (None, uid):
                found.append(f"{where}: runAsUser must be {uid}, the image's user (project rule)")
    return found


def pod_templates(documents: Sequence[Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    """(kind/name, pod spec, pod annotations) of every pod or pod template in `documents`."""
    for doc in documents:
        if not isinstance(doc, dict) or doc.get("kind") not in POD_SPEC_PATHS:
            continue
        path = POD_SPEC_PATHS[doc["kind"]]
        spec = _get(doc, *path)
        meta = _get(doc, *path[:-1], "metadata") or {}
        name = f"{doc['kind']}/{_get(doc, 'metadata', 'name')}"
        yield name, spec if isinstance(spec, dict) else {}, meta.get("annotations") or {}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.pod_security", description=__doc__)
    parser.add_argument("--uid", type=int, help="the uid every runAsUser must name")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    checked = 0
    failed = False
    for file in args.files:
        documents = list(yaml.safe_load_all(file.read_text()))
        for name, spec, annotations in pod_templates(documents):
            checked += 1
            for violation in pod_violations(spec, annotations, uid=args.uid):
                print(f"{file}: {name}: {violation}")
                failed = True
    if checked == 0:
        print("no pod or pod template found: nothing was checked", file=sys.stderr)
        return 1
    print(f"{checked} pod templates checked against Pod Security restricted", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
