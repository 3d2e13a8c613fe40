"""Check the hardening of docker-compose.yml, as `docker compose config --format json` resolves it.

`docker compose config` validates the file against the Compose schema; these are this
project's rules on top: every service built from the review-loop image has a read-only root
filesystem with /tmp as a tmpfs, no capabilities and no privilege escalation, and the App's
private key reaches the workers only, which join the key file's group to read it.

    docker compose config --format json | python -m deploy.compose_rules   # exit 1 on a break
"""

import json
import sys
from typing import Any

# The Compose secret that carries the App's private key.
PRIVATE_KEY_ENTRY = "review-loop-private-key"
KEY_READERS = {"worker"}


def service_violations(name: str, service: dict[str, Any]) -> list[str]:
    """Every rule the resolved service `name` breaks; none for services not built here."""
    if "build" not in service:
        return []
    found: list[str] = []
    if service.get("read_only") is not True:
        found.append(f"{name}: read_only must be true")
    if not any(str(t).split(":")[0] == "/tmp" for t in service.get("tmpfs") or []):  # noqa: S108
        found.append(f"{name}: /tmp must be a tmpfs (the root filesystem is read-only)")
    if "ALL" not in (service.get("cap_drop") or []):
        found.append(f"{name}: cap_drop must include ALL")
    if "no-new-privileges:true" not in (service.get("security_opt") or []):
        found.append(f"{name}: security_opt must include no-new-privileges:true")
    if service.get("privileged"):
        found.append(f"{name}: privileged must be unset or false")
    if service.get("user") not in (None, "10001:10001", "10001"):
        found.append(f"{name}: user must be the image's (10001)")
    secrets = {s["source"] if isinstance(s, dict) else s for s in service.get("secrets") or []}
    if name in KEY_READERS:
        if PRIVATE_KEY_ENTRY not in secrets:
            found.append(f"{name}: needs the secret {PRIVATE_KEY_ENTRY}")
        if not service.get("group_add"):
            found.append(f"{name}: group_add must name the key file's group (REVIEW_LOOP_KEY_GID)")
    elif PRIVATE_KEY_ENTRY in secrets:
        found.append(f"{name}: must not get the private key (only {sorted(KEY_READERS)} do)")
    return found


def violations(config: dict[str, Any]) -> list[str]:
    services: dict[str, Any] = config.get("services") or {}
    found = [v for name, s in sorted(services.items()) for v in service_violations(name, s)]
    if not any("build" in s for s in services.values()):
        found.append("no service is built from the review-loop image: nothing was checked")
    return found


def main() -> int:
    found = violations(json.load(sys.stdin))
    for violation in found:
        print(violation)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
