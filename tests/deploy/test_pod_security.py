"""The offline Pod Security "restricted" check of the Kubernetes manifests."""

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.pod_security import main, pod_templates, pod_violations

KUBERNETES = Path(__file__).parents[2] / "deploy" / "kubernetes"

LOCKED_DOWN: dict[str, Any] = {
    "automountServiceAccountToken": False,
    "securityContext": {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    },
    "containers": [
        {
            "name": "app",
            "image": "review-loop:0.1.0",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
    "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "key", "secret": {"secretName": "k"}}],
}

Change = Callable[[dict[str, Any]], None]


def container(spec: dict[str, Any]) -> dict[str, Any]:
    sc: dict[str, Any] = spec["containers"][0]["securityContext"]
    return sc


def set_init_container(spec: dict[str, Any]) -> None:
    spec["initContainers"] = [{"name": "init", "image": "busybox"}]


BREAKS: list[tuple[str, Change, str]] = [
    ("privileged", lambda s: container(s).update(privileged=True), "privileged must be"),
    ("host-network", lambda s: s.update(hostNetwork=True), "hostNetwork"),
    ("host-pid", lambda s: s.update(hostPID=True), "hostPID"),
    (
        "host-path-volume",
        lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "hostPath volumes are not allowed",
    ),
    (
        "nfs-volume",
        lambda s: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
        "type nfs not allowed",
    ),
    (
        "host-port",
        lambda s: s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]),
        "hostPort 80",
    ),
    (
        "escalation-allowed",
        lambda s: container(s).pop("allowPrivilegeEscalation"),
        "allowPrivilegeEscalation must be false",
    ),
    (
        "may-run-as-root",
        lambda s: s["securityContext"].pop("runAsNonRoot"),
        "runAsNonRoot must be true",
    ),
    (
        "container-says-root-is-fine",
        lambda s: container(s).update(runAsNonRoot=False),
        "runAsNonRoot must be true",
    ),
    ("uid-0", lambda s: container(s).update(runAsUser=0), "runAsUser must not be 0"),
    (
        "no-seccomp",
        lambda s: s["securityContext"].pop("seccompProfile"),
        "seccompProfile.type must be RuntimeDefault",
    ),
    (
        "seccomp-unconfined",
        lambda s: container(s).update(seccompProfile={"type": "Unconfined"}),
        "must not be Unconfined",
    ),
    (
        "capabilities-kept",
        lambda s: container(s).pop("capabilities"),
        "capabilities.drop must include ALL",
    ),
    (
        "sys-admin-added",
        lambda s: container(s)["capabilities"].update(add=["SYS_ADMIN"]),
        "capabilities.add",
    ),
    (
        "chown-added",
        lambda s: container(s)["capabilities"].update(add=["CHOWN"]),
        "may hold only NET_BIND_SERVICE",
    ),
    (
        "unsafe-sysctl",
        lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
        "sysctl kernel.msgmax",
    ),
    (
        "selinux-user",
        lambda s: container(s).update(seLinuxOptions={"user": "system_u"}),
        "seLinuxOptions.user",
    ),
    (
        "apparmor-unconfined",
        lambda s: container(s).update(appArmorProfile={"type": "Unconfined"}),
        "appArmorProfile.type",
    ),
    ("proc-mount", lambda s: container(s).update(procMount="Unmasked"), "procMount"),
    ("bare-init-container", set_init_container, "initContainers[init]"),
    (
        "writable-root",
        lambda s: container(s).pop("readOnlyRootFilesystem"),
        "readOnlyRootFilesystem must be true",
    ),
    (
        "api-token-mounted",
        lambda s: s.pop("automountServiceAccountToken"),
        "automountServiceAccountToken must be false",
    ),
    ("another-uid", lambda s: s["securityContext"].update(runAsUser=1000), "must be 10001"),
]


def test_a_locked_down_pod_passes() -> None:
    """The reference pod spec of these tests breaks no rule."""
    assert pod_violations(LOCKED_DOWN, {}, uid=10001) == []


@pytest.mark.parametrize(
    ("change", "expected"), [b[1:] for b in BREAKS], ids=[b[0] for b in BREAKS]
)
def test_each_way_of_breaking_restricted_is_reported(change: Change, expected: str) -> None:
    """One change to a locked-down pod yields a violation that says what to fix."""
    spec = copy.deepcopy(LOCKED_DOWN)
    change(spec)
    violations = pod_violations(spec, {}, uid=10001)
    assert any(expected in v for v in violations), violations


def test_an_unconfined_apparmor_annotation_is_reported() -> None:
    """The older AppArmor annotation is checked like the field."""
    key = "container.apparmor.security.beta.kubernetes.io/app"
    assert pod_violations(LOCKED_DOWN, {key: "unconfined"}) != []
    assert pod_violations(LOCKED_DOWN, {key: "runtime/default"}) == []


def test_the_shipped_manifests_pass_and_hold_every_pod_the_deployment_runs() -> None:
    """Web, worker and migrate pods are found in deploy/kubernetes and all pass."""
    names = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for name, spec, annotations in pod_templates(list(yaml.safe_load_all(path.read_text()))):
            assert pod_violations(spec, annotations, uid=10001) == [], name
            names.append(name)
    assert names == [
        "Deployment/review-loop-web",
        "Deployment/review-loop-worker",
        "Job/review-loop-migrate",
    ]


def test_the_command_fails_on_a_privileged_pod(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`python -m deploy.pod_security` exits 1 and names the pod and the rule."""
    spec = copy.deepcopy(LOCKED_DOWN)
    container(spec).update(privileged=True)
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump({"kind": "Pod", "metadata": {"name": "p"}, "spec": spec}))
    assert main([str(manifest)]) == 1
    assert "Pod/p: containers[app]: privileged must be unset or false" in capsys.readouterr().out


def test_the_command_fails_when_there_is_no_pod_to_check(tmp_path: Path) -> None:
    """A run that checked nothing does not pass."""
    manifest = tmp_path / "service.yaml"
    manifest.write_text("kind: Service\nmetadata: {name: s}\n")
    assert main([str(manifest)]) == 1
