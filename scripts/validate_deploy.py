#!/usr/bin/env python3
"""Structural checks of deploy/ that need no Docker and no systemd.

Run by scripts/validate_deploy.sh (which adds `docker compose config`,
`systemd-analyze verify` and hadolint where they exist):

    python3 scripts/validate_deploy.py [--deploy-dir DIR] [--farewatch BIN]

Checks, each reported on its own line:
- compose.yaml (needs PyYAML; the Compose Specification schema in
  scripts/vendor/ too when jsonschema is installed): the services a fleet
  needs, every service's image or build, depends_on targets and conditions,
  health checks (and that they probe the port the command listens on), the
  shared PostgreSQL and Redis URLs, restart policies, replicas, and no secret
  written inline;
- farewatch.env.example: no secret filled in, every name a farewatch
  variable (the repository's .env.example) or one compose uses;
- the systemd units: required sections and keys, hardening, user, the
  EnvironmentFile, ExecStart/ExecStartPre commands, and directive names (a
  misspelt one is ignored by systemd with only a warning);
- the Dockerfile and .dockerignore: stages, --locked release build, non-root
  runtime user, CA certificates, no secrets, and that every file the build
  compiles in (include_str!/include_bytes!) is copied and not ignored;
- with --farewatch BIN: every farewatch command line in compose.yaml and the
  units is accepted by that binary (`BIN ARGS... --help` exits 0).

Exit status: 0 when nothing is wrong, 1 when something is (each problem
printed as `FILE: problem`), 2 on bad usage.
"""

import argparse
import fnmatch
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

problems = []


def problem(where, message):
    problems.append(f"{where}: {message}")


def say(message):
    print(f"  {message}")


# Names whose values are credentials (or URLs that carry them).
SECRET_NAME = re.compile(
    r"(PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY|AUTH|ACCOUNT_SID|CLIENT_ID|WEBHOOK)", re.I
)
INTERPOLATION = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:]*:([^@/]*)@", re.I)

FAREWATCH_COMMANDS = {"daemon", "serve", "worker", "migrate"}


def only_interpolation(value):
    """True when every character of value comes from ${...} references."""
    return INTERPOLATION.sub("", value).strip() == "" and INTERPOLATION.search(value) is not None


def inline_secret(name, value):
    """Why name=value writes a secret inline, or None."""
    if value is None:
        return None
    value = str(value)
    # ${...} may hold anything (a `:?message` with slashes): mask it first.
    match = URL_PASSWORD.match(INTERPOLATION.sub("\x00", value))
    if match and match.group(1) and match.group(1).strip("\x00"):
        return "a password is written in the URL; take it from the env file (${VAR})"
    if SECRET_NAME.search(name) and value.strip() and not only_interpolation(value):
        return "a secret is written inline; take it from the env file"
    return None


def env_file_keys(path):
    """NAME -> value of the active lines, and the names of commented examples."""
    active, commented = {}, set()
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            example = re.match(r"#\s*([A-Z][A-Z0-9_]*)=", line)
            if example:
                commented.add(example.group(1))
                continue
            if line.startswith("#"):
                continue
            match = re.match(r"(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
            if not match:
                problem(f"{path}:{number}", "not a NAME=value line")
                continue
            active[match.group(1)] = match.group(2)
    return active, commented


# --------------------------------------------------------------------------
# compose.yaml


def interpolation_default(value):
    """`${NAME:-default}` -> default; other strings unchanged."""
    match = re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", value)
    return match.group(1) if match else value


def command_list(service):
    command = service.get("command")
    if command is None:
        return []
    if isinstance(command, str):
        return command.split()
    return [str(part) for part in command]


def flag_value(argv, flag):
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def port_of(addr):
    return addr.rsplit(":", 1)[-1] if addr and ":" in addr else None


def is_farewatch(service):
    image = str(service.get("image", ""))
    return image.split(":")[0].endswith("farewatch") or "farewatch" in json.dumps(service.get("build", ""))


def replicas(service):
    deploy = service.get("deploy") or {}
    value = deploy.get("replicas", 1)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 1


def environment_of(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        out = {}
        for item in env:
            name, _, value = str(item).partition("=")
            out[name] = value if "=" in str(item) else None
        return out
    return {str(k): (None if v is None else str(v)) for k, v in env.items()}


def check_compose(deploy_dir, env_example, commands):
    path = os.path.join(deploy_dir, "compose.yaml")
    try:
        import yaml  # noqa: PLC0415
    except ImportError:
        say(f"SKIP {path}: PyYAML is not installed (pip install pyyaml, or apt-get install python3-yaml)")
        return "skipped (no PyYAML)"
    with open(path, encoding="utf-8") as f:
        try:
            doc = yaml.safe_load(f)
        except yaml.YAMLError as error:
            problem(path, f"not valid YAML: {error}")
            return "checked"

    schema_path = os.path.join(ROOT, "scripts", "vendor", "compose-spec.json")
    try:
        import jsonschema  # noqa: PLC0415
    except ImportError:
        jsonschema = None
    if jsonschema is None:
        say(f"SKIP the Compose Specification schema: jsonschema is not installed")
    else:
        with open(schema_path, encoding="utf-8") as f:
            schema = json.load(f)
        validator = jsonschema.Draft7Validator(schema)
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
        for error in errors:
            where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
            problem(path, f"schema: {where}: {error.message}")
        say(f"{path}: validated against the Compose Specification schema ({len(errors)} errors)")

    if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
        problem(path, "no `services:` mapping")
        return "checked"
    services = doc["services"]

    # Which services there are, by role.
    by_role = {}
    for name, service in services.items():
        if not isinstance(service, dict):
            problem(path, f"service {name}: not a mapping")
            continue
        argv = command_list(service) if is_farewatch(service) else []
        role = argv[0] if argv else None
        if is_farewatch(service):
            if role not in FAREWATCH_COMMANDS:
                problem(path, f"service {name}: farewatch command {role!r} is not one of {sorted(FAREWATCH_COMMANDS)}")
            by_role.setdefault(role, []).append(name)
            commands.append((f"{path} (service {name})", argv))
        elif "postgres" in str(service.get("image", "")):
            by_role.setdefault("postgres", []).append(name)
        elif "redis" in str(service.get("image", "")):
            by_role.setdefault("redis", []).append(name)

    for role in ("postgres", "redis", "migrate", "daemon", "serve", "worker"):
        if not by_role.get(role):
            problem(path, f"no {role} service")
    for name in by_role.get("postgres", []):
        if not re.match(r"postgres:16(\b|[.-])", str(services[name].get("image", ""))):
            problem(path, f"service {name}: expected the postgres:16 image, found {services[name].get('image')!r}")
    for name in by_role.get("redis", []):
        if not re.match(r"redis:7(\b|[.-])", str(services[name].get("image", ""))):
            problem(path, f"service {name}: expected the redis:7 image, found {services[name].get('image')!r}")
    daemons = sum(replicas(services[n]) for n in by_role.get("daemon", []))
    if daemons < 2:
        problem(path, f"a fleet needs several daemons; found {daemons}")
    workers = sum(replicas(services[n]) for n in by_role.get("worker", []))

    # Services that may go without a health check, and why.
    exempt = {"migrate": "a one-shot job", "worker": "no HTTP endpoint"}

    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        where = f"{path} (service {name})"
        if "image" not in service and "build" not in service:
            problem(where, "neither image nor build")

        # depends_on
        depends = service.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {d: {"condition": "service_started"} for d in depends}
        for target, spec in depends.items():
            if target not in services:
                problem(where, f"depends_on {target!r}, which is not a service")
                continue
            condition = (spec or {}).get("condition", "service_started")
            if condition not in ("service_started", "service_healthy", "service_completed_successfully"):
                problem(where, f"depends_on {target}: unknown condition {condition!r}")
            other = services[target]
            if condition == "service_healthy" and (not other.get("healthcheck") or other["healthcheck"].get("disable")):
                problem(where, f"waits for {target} to be healthy, but {target} has no health check")
            if condition == "service_completed_successfully" and str(other.get("restart", "no")) != "no":
                problem(where, f"waits for {target} to complete, but {target} restarts ({other.get('restart')})")

        # Health checks.
        health = service.get("healthcheck")
        argv = command_list(service) if is_farewatch(service) else []
        role = argv[0] if argv else None
        if not health or health.get("disable"):
            if role in exempt:
                say(f"{where}: no health check ({exempt[role]})")
            else:
                problem(where, "no health check")
        else:
            test = health.get("test")
            if isinstance(test, str):
                test = ["CMD-SHELL", test]
            if not test or test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2:
                problem(where, f"healthcheck.test must be [CMD, ...] or [CMD-SHELL, ...], found {test!r}")
            elif "farewatch-healthcheck" in " ".join(test):
                probe = test[test.index("farewatch-healthcheck") + 1:] if "farewatch-healthcheck" in test else []
                if len(probe) != 3:
                    problem(where, f"farewatch-healthcheck takes HOST:PORT PATH EXPECTED, found {probe!r}")
                else:
                    want = {"daemon": ("--metrics-addr", "/healthz", "ok"), "serve": ("--addr", "/ping", "pong")}.get(role)
                    if want is None:
                        problem(where, f"farewatch-healthcheck on a {role!r} service, which serves no HTTP")
                    else:
                        flag, http_path, body = want
                        listen = flag_value(argv, flag)
                        if listen is None:
                            problem(where, f"the health check probes HTTP but the command has no {flag}")
                        elif port_of(listen) != port_of(probe[0]):
                            problem(where, f"the health check probes {probe[0]} but {flag} is {listen}")
                        if (probe[1], probe[2]) != (http_path, body):
                            problem(where, f"a {role} answers {http_path} with {body!r}; the check asks {probe[1]} for {probe[2]!r}")
            if role is None and name in by_role.get("postgres", []) and "pg_isready" not in " ".join(test or []):
                problem(where, "the PostgreSQL health check should be pg_isready")
            if role is None and name in by_role.get("redis", []) and "ping" not in " ".join(test or []):
                problem(where, "the Redis health check should be redis-cli ping")

        # Secrets.
        for key, value in environment_of(service).items():
            why = inline_secret(key, value)
            if why:
                problem(where, f"environment {key}: {why}")
        build = service.get("build")
        if isinstance(build, dict):
            args = build.get("args") or {}
            items = args.items() if isinstance(args, dict) else (str(a).partition("=")[::2] for a in args)
            for key, value in items:
                why = inline_secret(key, value)
                if why:
                    problem(where, f"build arg {key}: {why}")

        if not is_farewatch(service):
            if "restart" not in service:
                problem(where, "no restart policy")
            continue

        # farewatch services.
        env = environment_of(service)
        database = env.get("DATABASE_URL") or ""
        host = re.match(r"postgres(?:ql)?://[^@/]*@([^:/]+)", INTERPOLATION.sub("VAR", database))
        if not host:
            problem(where, f"DATABASE_URL must be postgres://USER:${{PASSWORD}}@HOST/DB, found {database!r}")
        elif host.group(1) not in services:
            problem(where, f"DATABASE_URL names host {host.group(1)!r}, which is not a service")
        redis_url = env.get("REDIS_URL") or ""
        host = re.match(r"rediss?://(?:[^@/]*@)?([^:/]+)", INTERPOLATION.sub("VAR", redis_url))
        if not host:
            problem(where, f"REDIS_URL must be redis://HOST:6379, found {redis_url!r}")
        elif host.group(1) not in services:
            problem(where, f"REDIS_URL names host {host.group(1)!r}, which is not a service")
        env_files = service.get("env_file")
        if not env_files:
            problem(where, "no env_file: secrets come from the env file")
        else:
            for entry in env_files if isinstance(env_files, list) else [env_files]:
                file = entry.get("path") if isinstance(entry, dict) else str(entry)
                default = interpolation_default(file)
                if default.endswith(".example"):
                    problem(where, f"env_file {file!r} defaults to the example itself")
        restart = str(service.get("restart", "no"))
        if role == "migrate":
            if restart != "no":
                problem(where, f"a one-shot migrate must not restart (restart: {restart})")
            if replicas(service) != 1:
                problem(where, "migrate must run once")
        else:
            if restart not in ("always", "unless-stopped", "on-failure") and not restart.startswith("on-failure:"):
                problem(where, f"restart policy {restart!r}: a long-running farewatch must be restarted")
            deps = service.get("depends_on") or {}
            migrates = [n for n in by_role.get("migrate", [])]
            if isinstance(deps, list) or not any(
                (deps.get(m) or {}).get("condition") == "service_completed_successfully" for m in migrates
            ):
                problem(where, "must wait for the migrate service to complete successfully")
            if "stop_grace_period" not in service:
                problem(where, "no stop_grace_period (SIGTERM lets in-flight work finish)")
        if role == "daemon":
            addr = flag_value(argv, "--metrics-addr")
            if addr is None:
                problem(where, "a daemon needs --metrics-addr for its health check and metrics")
            elif addr.startswith("127.") or addr.startswith("localhost") or addr.startswith("[::1]"):
                problem(where, f"--metrics-addr {addr} listens on the container's loopback: Prometheus cannot scrape it")
        if role == "serve":
            addr = flag_value(argv, "--addr")
            published = [str(p) for p in service.get("ports") or []]
            if not published:
                problem(where, "serve publishes no port")
            if addr is None or port_of(addr) is None:
                problem(where, "serve needs --addr 0.0.0.0:PORT inside a container")
            else:
                if addr.startswith("127.") or addr.startswith("localhost"):
                    problem(where, f"--addr {addr} is the container's loopback: the published port reaches nothing")
                if published and not any(p.rsplit(":", 1)[-1].split("/")[0] == port_of(addr) for p in published):
                    problem(where, f"no published port maps to the container port {port_of(addr)}")

    # Interpolation: a variable without a default must be in the env example.
    text = open(path, encoding="utf-8").read()
    active, commented = env_example
    for match in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:?[?])?[^}]*\}", text):
        name, required = match.group(1), match.group(2)
        if required and name not in active and name not in commented:
            problem(path, f"${{{name}}} is required but farewatch.env.example does not list it")
    say(f"{path}: {len(services)} services, {daemons} daemons, {workers} workers")
    return "checked"


# --------------------------------------------------------------------------
# farewatch.env.example


def check_env_example(deploy_dir):
    path = os.path.join(deploy_dir, "farewatch.env.example")
    active, commented = env_file_keys(path)
    for name, value in active.items():
        if SECRET_NAME.search(name) and value.strip():
            problem(path, f"{name} has a value: the example must carry no secret")
        why = inline_secret(name, value)
        if why and not SECRET_NAME.search(name):
            problem(path, f"{name}: {why}")
    known = set()
    root_example = os.path.join(ROOT, ".env.example")
    if os.path.exists(root_example):
        a, c = env_file_keys(root_example)
        known = set(a) | set(c)
    # Names farewatch reads by pattern (per source) or that compose uses.
    patterns = [r"[A-Z]+_(BASE_URL|MAX_CONCURRENCY|RATE_LIMIT|TIMEOUT|DAILY_BUDGET)",
                r"(SLACK_WEBHOOK|DISCORD_WEBHOOK|WEBHOOK_URL|WEBHOOK_SECRET)_[A-Z0-9_]+",
                r"POSTGRES_PASSWORD"]
    for name in sorted(set(active) | commented):
        if known and name not in known and not any(re.fullmatch(p, name) for p in patterns):
            problem(path, f"{name} is not a farewatch variable (not in .env.example): a typo?")
    # The filled-in copy must never be committed.
    relative = os.path.relpath(os.path.join(deploy_dir, "farewatch.env"), ROOT)
    if not relative.startswith("..") and os.path.isdir(os.path.join(ROOT, ".git")):
        try:
            ignored_by_git = subprocess.run(
                ["git", "check-ignore", "-q", relative], cwd=ROOT, capture_output=True, timeout=30
            ).returncode == 0
        except FileNotFoundError:
            ignored_by_git = True  # no git: nothing to commit with
        if not ignored_by_git:
            problem(os.path.join(ROOT, ".gitignore"), f"{relative} (the filled-in env file) is not ignored")
    say(f"{path}: {len(active)} variables set, {len(commented)} commented examples, none secret")
    return active, commented


# --------------------------------------------------------------------------
# systemd units

UNIT_KEYS = {
    "Unit": {
        "Description", "Documentation", "Wants", "Requires", "Requisite", "BindsTo", "PartOf",
        "Upholds", "Conflicts", "Before", "After", "OnFailure", "OnSuccess", "PropagatesReloadTo",
        "ReloadPropagatedFrom", "JoinsNamespaceOf", "RequiresMountsFor", "DefaultDependencies",
        "StartLimitIntervalSec", "StartLimitBurst", "StartLimitAction", "ConditionPathExists",
        "AssertPathExists", "StopWhenUnneeded", "RefuseManualStart", "RefuseManualStop",
    },
    "Service": {
        "Type", "ExitType", "RemainAfterExit", "GuessMainPID", "PIDFile", "BusName", "ExecStart",
        "ExecStartPre", "ExecStartPost", "ExecCondition", "ExecReload", "ExecStop", "ExecStopPost",
        "RestartSec", "RestartSteps", "RestartMaxDelaySec", "TimeoutStartSec", "TimeoutStopSec",
        "TimeoutAbortSec", "TimeoutSec", "RuntimeMaxSec", "WatchdogSec", "Restart",
        "SuccessExitStatus", "RestartPreventExitStatus", "RestartForceExitStatus",
        "NotifyAccess", "Sockets", "OOMPolicy", "User", "Group", "DynamicUser",
        "SupplementaryGroups", "WorkingDirectory", "RootDirectory", "Environment",
        "EnvironmentFile", "PassEnvironment", "UnsetEnvironment", "StateDirectory",
        "StateDirectoryMode", "RuntimeDirectory", "RuntimeDirectoryMode", "CacheDirectory",
        "CacheDirectoryMode", "LogsDirectory", "LogsDirectoryMode", "ConfigurationDirectory",
        "ConfigurationDirectoryMode", "ReadWritePaths", "ReadOnlyPaths", "InaccessiblePaths",
        "KillMode", "KillSignal", "FinalKillSignal", "SendSIGKILL", "SendSIGHUP",
        "NoNewPrivileges", "CapabilityBoundingSet", "AmbientCapabilities", "ProtectSystem",
        "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateNetwork", "PrivateUsers",
        "PrivateMounts", "PrivateIPC", "ProtectKernelTunables", "ProtectKernelModules",
        "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname",
        "ProtectProc", "ProcSubset", "RestrictAddressFamilies", "RestrictNamespaces",
        "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute",
        "RemoveIPC", "SystemCallArchitectures", "SystemCallFilter", "SystemCallErrorNumber",
        "SystemCallLog", "IPAddressAllow", "IPAddressDeny", "DevicePolicy", "DeviceAllow",
        "UMask", "LimitNOFILE", "LimitNPROC", "LimitCORE", "MemoryMax", "MemoryHigh", "CPUQuota",
        "TasksMax", "Nice", "IOSchedulingClass", "StandardOutput", "StandardError",
        "StandardInput", "SyslogIdentifier", "LogLevelMax", "Slice", "Delegate",
    },
    "Install": {"WantedBy", "RequiredBy", "Alias", "Also", "DefaultInstance"},
}


def parse_unit(path):
    """[(section, key, value, line)] of a unit file (continuation lines joined)."""
    entries, section, pending, start = [], None, "", 0
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not pending and (not line.strip() or line.lstrip().startswith(("#", ";"))):
                continue
            if line.endswith("\\"):
                if not pending:
                    start = number
                pending += line[:-1] + " "
                continue
            if pending:
                line, pending = pending + line, ""
            else:
                start = number
            stripped = line.strip()
            header = re.fullmatch(r"\[([A-Za-z]+)\]", stripped)
            if header:
                section = header.group(1)
                continue
            if "=" not in stripped:
                problem(f"{path}:{start}", f"not a Key=Value line: {stripped!r}")
                continue
            key, value = stripped.split("=", 1)
            if section is None:
                problem(f"{path}:{start}", "a key before any [Section]")
                continue
            entries.append((section, key.strip(), value.strip(), start))
    return entries


def check_units(deploy_dir, commands):
    unit_dir = os.path.join(deploy_dir, "systemd")
    required = ["farewatch-daemon.service", "farewatch-serve.service", "farewatch-worker.service"]
    names = sorted(n for n in os.listdir(unit_dir) if n.endswith(".service"))
    for name in required:
        if name not in names:
            problem(unit_dir, f"{name} is missing")
    for name in names:
        path = os.path.join(unit_dir, name)
        entries = parse_unit(path)
        values = {}
        for section, key, value, number in entries:
            if section not in UNIT_KEYS:
                problem(f"{path}:{number}", f"unknown section [{section}]")
            elif key not in UNIT_KEYS[section]:
                problem(f"{path}:{number}", f"unknown or misplaced directive {key}= in [{section}] (systemd ignores it with a warning)")
            values.setdefault((section, key), []).append(value)

        def one(section, key):
            found = values.get((section, key))
            return found[-1] if found else None

        for section in ("Unit", "Service", "Install"):
            if not any(s == section for s, _ in values):
                problem(path, f"no [{section}] section")
        if not one("Unit", "Description"):
            problem(path, "no Description=")
        if not one("Install", "WantedBy"):
            problem(path, "no WantedBy= (systemctl enable would do nothing)")
        user = one("Service", "User")
        if not user or user in ("root", "0"):
            problem(path, f"must run as a dedicated non-root User= (found {user!r})")
        if one("Service", "DynamicUser") in ("yes", "true", "1"):
            problem(path, "DynamicUser= would give each unit its own user: the units share /var/lib/farewatch")
        if "/etc/farewatch/farewatch.env" not in (values.get(("Service", "EnvironmentFile")) or []):
            problem(path, "EnvironmentFile=/etc/farewatch/farewatch.env is missing")
        restart = one("Service", "Restart")
        if restart not in ("on-failure", "always", "on-abnormal"):
            problem(path, f"Restart= should be on-failure or always (found {restart!r})")
        if one("Service", "KillSignal") not in (None, "SIGTERM", "TERM", "15"):
            problem(path, "farewatch stops gracefully on SIGTERM: KillSignal= must be SIGTERM")
        if not one("Service", "TimeoutStopSec"):
            problem(path, "no TimeoutStopSec= (how long a graceful stop may take)")
        hardening = {
            "NoNewPrivileges": ("yes", "true", "1"),
            "ProtectSystem": ("strict",),
            "ProtectHome": ("yes", "true", "read-only", "tmpfs"),
            "PrivateTmp": ("yes", "true", "1"),
            "StateDirectory": ("farewatch",),
        }
        for key, allowed in hardening.items():
            if one("Service", key) not in allowed:
                problem(path, f"{key}= must be {' or '.join(allowed)} (found {one('Service', key)!r})")

        role = re.match(r"farewatch-([a-z]+)(@?)\.service$", name)
        role, template = (role.group(1), role.group(2) == "@") if role else (None, False)
        start = one("Service", "ExecStart") or ""
        argv = start.lstrip("-@:+!").split()
        if not argv or argv[0] != "/usr/local/bin/farewatch":
            problem(path, f"ExecStart= must run /usr/local/bin/farewatch (found {start!r})")
        elif role and (len(argv) < 2 or argv[1] != role):
            problem(path, f"ExecStart= runs `farewatch {' '.join(argv[1:2])}`; this unit is for `{role}`")
        pre = values.get(("Service", "ExecStartPre")) or []
        if not any(p.lstrip("-@:+!").split()[:2] == ["/usr/local/bin/farewatch", "migrate"] for p in pre):
            problem(path, "no ExecStartPre=/usr/local/bin/farewatch migrate")
        if role == "daemon" and "--metrics-addr" not in argv:
            problem(path, "a daemon needs --metrics-addr (its /healthz and /metrics)")
        if template and "%i" not in start:
            problem(path, "a template unit should use its instance name (%i) in ExecStart=")
        if not template and "%i" in start:
            problem(path, "%i in a unit that is not a template")

        # The command lines, with the unit's own defaults for ${VAR} and an instance for %i.
        defaults = {}
        for assignment in values.get(("Service", "Environment")) or []:
            name_value = assignment.strip('"').split("=", 1)
            if len(name_value) == 2:
                defaults[name_value[0]] = name_value[1]

        def expand(arg):
            arg = arg.replace("%i", "9101")
            return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: defaults.get(m.group(1), m.group(0)), arg)

        for line in [start] + pre:
            parts = [expand(a) for a in line.lstrip("-@:+!").split()]
            if parts and parts[0] == "/usr/local/bin/farewatch":
                commands.append((path, parts[1:]))
        say(f"{path}: {len(entries)} directives, ExecStart `{' '.join(argv[1:])}`")


# --------------------------------------------------------------------------
# Dockerfile and .dockerignore


def dockerignore_patterns():
    path = os.path.join(ROOT, ".dockerignore")
    if not os.path.exists(path):
        problem(path, "missing: the build context would include target/, .git and any .env")
        return []
    patterns = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append(line)
    for needed in ("target", ".git", ".env"):
        if not any(p.strip("/").lstrip("*/") == needed for p in patterns):
            problem(path, f"does not leave out {needed}")
    return patterns


def ignored(relpath, patterns):
    verdict = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        parts = relpath.split("/")
        hit = any(
            fnmatch.fnmatch("/".join(parts[: i + 1]), pattern) for i in range(len(parts))
        ) or fnmatch.fnmatch(relpath, pattern)
        if hit:
            verdict = not negate
    return verdict


def check_dockerfile(deploy_dir, uses_healthcheck):
    names = [n for n in ("Dockerfile", "Containerfile") if os.path.exists(os.path.join(deploy_dir, n))]
    if not names:
        problem(deploy_dir, "no Dockerfile or Containerfile")
        return
    path = os.path.join(deploy_dir, names[0])
    lines, current = [], ""
    for raw in open(path, encoding="utf-8"):
        line = raw.rstrip("\n")
        if not current and line.lstrip().startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            lines.append(current.strip())
        current = ""
    stages = []
    for line in lines:
        word = line.split(None, 1)[0].upper()
        rest = line.split(None, 1)[1] if " " in line else ""
        if word == "FROM":
            stages.append({"from": rest, "lines": []})
        elif stages:
            stages[-1]["lines"].append((word, rest))
        if word in ("ENV", "ARG"):
            for name, value in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\"[^\"]*\"|\S+)", rest):
                why = inline_secret(name, value.strip('"'))
                if why:
                    problem(path, f"{word} {name}: {why} (images are public to whoever can pull them)")
        if word in ("COPY", "ADD"):
            sources = [s for s in rest.split() if not s.startswith("--")][:-1]
            for source in sources:
                if re.search(r"(^|/)\.env$|(^|/)[^/]*\.env$", source):
                    problem(path, f"{word} {source}: an env file (secrets) copied into the image")
    if len(stages) < 2:
        problem(path, f"expected a multi-stage build (builder and runtime), found {len(stages)} stage(s)")
        return
    builder, runtime = stages[0], stages[-1]
    builds = [rest for word, rest in builder["lines"] if word == "RUN" and "cargo build" in rest]
    if not builds:
        problem(path, "the builder stage runs no `cargo build`")
    for rest in builds:
        for flag in ("--locked", "--release"):
            if flag not in rest:
                problem(path, f"`cargo build` without {flag}")
    users = [rest for word, rest in runtime["lines"] if word == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problem(path, "the runtime stage must switch to a non-root USER")
    entry = [rest for word, rest in runtime["lines"] if word == "ENTRYPOINT"]
    if not entry or "farewatch" not in entry[-1]:
        problem(path, "ENTRYPOINT should be farewatch")
    runtime_text = " ".join(rest for _, rest in runtime["lines"])
    if "ca-certificates" not in runtime_text and "distroless" not in runtime["from"]:
        problem(path, "the runtime stage installs no ca-certificates (TLS to the providers needs them)")
    if uses_healthcheck and "farewatch-healthcheck" not in runtime_text:
        problem(path, "compose uses farewatch-healthcheck but the image does not install it")

    # Every file the build compiles in must be copied into the builder and
    # not be left out of the context by .dockerignore.
    patterns = dockerignore_patterns()
    copied = []
    for word, rest in builder["lines"]:
        if word in ("COPY", "ADD") and "--from" not in rest:
            copied += [re.sub(r"^\./", "", s).rstrip("/") or "." for s in rest.split() if not s.startswith("--")][:-1]
    for word, rest in runtime["lines"]:
        if word in ("COPY", "ADD") and "--from" not in rest:
            for source in [s for s in rest.split() if not s.startswith("--")][:-1]:
                copied_path = os.path.join(ROOT, source)
                if not os.path.exists(copied_path):
                    problem(path, f"COPY {source}: no such file")
                elif ignored(source, patterns):
                    problem(path, f"COPY {source}: left out of the build context by .dockerignore")
    needed = {"Cargo.toml", "Cargo.lock"}
    for directory, _, files in os.walk(os.path.join(ROOT, "src")):
        for file in files:
            if not file.endswith(".rs"):
                continue
            source = os.path.join(directory, file)
            text = open(source, encoding="utf-8", errors="replace").read()
            for target in re.findall(r'include_(?:str|bytes)!\(\s*"([^"]+)"\s*\)', text):
                full = os.path.normpath(os.path.join(directory, target))
                needed.add(os.path.relpath(full, ROOT))
    for rel in sorted(needed):
        if rel.startswith(".."):
            continue
        covered = any(rel == c or rel.startswith(c.rstrip("/") + "/") for c in copied)
        if not covered:
            problem(path, f"the build needs {rel} (compiled in) but the builder does not COPY it")
        elif ignored(rel, patterns):
            problem(path, f"the build needs {rel} but .dockerignore leaves it out of the context")
    say(f"{path}: {len(stages)} stages, runtime from {runtime['from']}, user {users[-1] if users else '?'}; "
        f"{len(needed)} compiled-in files copied")


# --------------------------------------------------------------------------


def check_command_lines(binary, commands):
    seen = set()
    for where, argv in commands:
        key = tuple(argv)
        if key in seen:
            continue
        seen.add(key)
        run = subprocess.run(
            [os.path.abspath(binary), *argv, "--help"], capture_output=True, text=True, timeout=60,
            env={**os.environ, "NO_COLOR": "1"}, cwd="/",
        )
        if run.returncode != 0:
            first = (run.stderr or run.stdout).strip().splitlines()[:3]
            problem(where, f"`farewatch {' '.join(argv)}` is refused by {binary}: {' / '.join(first)}")
    say(f"{len(seen)} distinct command lines accepted by {binary}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deploy-dir", default=os.path.join(ROOT, "deploy"))
    parser.add_argument("--farewatch", help="a built farewatch binary to check the command lines against")
    args = parser.parse_args()
    deploy_dir = os.path.abspath(args.deploy_dir)

    commands = []
    print("python: farewatch.env.example")
    env_example = check_env_example(deploy_dir)
    print("python: compose.yaml")
    compose = check_compose(deploy_dir, env_example, commands)
    print("python: systemd units")
    check_units(deploy_dir, commands)
    print("python: Dockerfile and .dockerignore")
    compose_text = open(os.path.join(deploy_dir, "compose.yaml"), encoding="utf-8").read()
    check_dockerfile(deploy_dir, "farewatch-healthcheck" in compose_text)
    if args.farewatch:
        print(f"python: command lines against {args.farewatch}")
        check_command_lines(args.farewatch, commands)
    else:
        print("python: SKIP command lines (no --farewatch binary given)")

    if problems:
        print(f"\n{len(problems)} problem(s):")
        for p in problems:
            print(f"  {p}")
        return 1
    print(f"python: all structural checks passed (compose: {compose})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
