"""Deployment files (docker/, docs/deployment.md) agree with the code and with each other.

Offline and Docker-free: compose files are parsed and interpolated here as Compose would,
docker/dagster.yaml is validated by Dagster's own instance-config loader (and loaded as a real
instance with its storage swapped to SQLite), the Dockerfiles and their ignore files are parsed,
and the GPU `dagster-k8s/config` tag from the docs is turned into the Kubernetes Job that the
K8sRunLauncher would create from docker/helm/values.yaml.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "docker-compose.yml"
COMPOSE_GPU = DOCKER / "docker-compose.gpu.yml"
INSTANCE = DOCKER / "dagster.yaml"
WORKSPACE = DOCKER / "workspace.yaml"
HELM_VALUES = DOCKER / "helm" / "values.yaml"
DEPLOYMENT_DOC = REPO / "docs" / "deployment.md"
DOCKERFILES = ["Dockerfile", "Dockerfile.cuda"]
DAGSTER_SERVICES = ["code", "webserver", "daemon"]
DAGSTER_HOME = "/opt/dagster/dagster_home"


# ----------------------------------------------------------------------------- helpers: files


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, as Compose and Helm do (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path) -> dict:
    with path.open() as f:
        return yaml.load(f, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def pinned_versions() -> dict[str, str]:
    """`name==version` dependencies of pyproject.toml, by lower-case name."""
    pins = {}
    for dep in pyproject()["project"]["dependencies"]:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)\s*", dep)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def code_env_names() -> set[str]:
    """Every MEDTRINITY_* variable name that the shipped code mentions."""
    names: set[str] = set()
    for pkg in ("medtrinity_assets", "medtrinity_resources"):
        for py in (REPO / pkg).rglob("*.py"):
            names |= set(re.findall(r"\bMEDTRINITY_[A-Z0-9_]*[A-Z0-9]\b", py.read_text()))
    return names


def instance_env_refs(node) -> set[str]:
    """Names in Dagster's `{env: NAME}` config form, anywhere in a config tree."""
    found: set[str] = set()
    if isinstance(node, Mapping):
        if set(node) == {"env"} and isinstance(node["env"], str):
            return {node["env"]}
        for v in node.values():
            found |= instance_env_refs(v)
    elif isinstance(node, list):
        for v in node:
            found |= instance_env_refs(v)
    return found


# ----------------------------------------------------------------------------- helpers: compose

_INTERPOLATION = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Compose variable interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}."""

    def repl(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return value if value is not None else arg
        if op in (":?", "?"):
            missing = not value if op == ":?" else value is None
            if missing:
                raise ValueError(f"required variable {name} is not set: {arg}")
            return value
        return value or ""

    return _INTERPOLATION.sub(repl, text)


def resolve(node, env: Mapping[str, str]):
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, Mapping):
        return {k: resolve(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, env) for v in node]
    return node


def compose(env: Mapping[str, str] | None = None, path: Path = COMPOSE) -> dict:
    """The compose file with anchors merged and variables interpolated from `env` (default: none set)."""
    return resolve(load_yaml(path), env or {})


def service_env(svc: Mapping) -> dict[str, str]:
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def mounts(svc: Mapping) -> list[tuple[str, str]]:
    """(source, target) of a service's volumes, short or long syntax."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, str):
            parts = v.split(":")
            out.append((parts[0], parts[1]))
        else:
            out.append((v["source"], v["target"]))
    return out


def named_mounts(svc: Mapping) -> dict[str, str]:
    """target -> named volume (bind mounts, which start with . / or ~, are left out)."""
    return {t: s for s, t in mounts(svc) if not s.startswith((".", "/", "~", "$"))}


def command_args(svc: Mapping) -> list[str]:
    cmd = svc["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def option(args: list[str], *flags: str) -> str:
    for i, a in enumerate(args):
        if a in flags:
            return args[i + 1]
    raise AssertionError(f"none of {flags} in {args}")


def deep_merge(base, override):
    """Compose's merge of an override file: mappings merge key by key, the rest is replaced."""
    if isinstance(base, Mapping) and isinstance(override, Mapping):
        out = dict(base)
        for k, v in override.items():
            out[k] = deep_merge(base[k], v) if k in base else v
        return out
    return override


# ----------------------------------------------------------------------------- helpers: Dockerfile


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        buf += stripped
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


class DockerImage:
    """What a Dockerfile declares: base, ARG defaults, ENV, COPY (sources -> absolute destination), EXPOSE, CMD."""

    def __init__(self, path: Path):
        self.path = path
        self.base = ""
        self.args: dict[str, str] = {}
        self.env: dict[str, str] = {}
        self.copies: list[tuple[list[str], str]] = []
        self.exposed: set[int] = set()
        self.workdir = "/"
        self.runs: list[str] = []
        self.cmd: list[str] = []
        self.user = "root"
        for word, rest in dockerfile_instructions(path):
            if word == "FROM":
                self.base = rest.split()[0]
            elif word == "ARG":
                name, _, default = rest.partition("=")
                self.args[name] = shlex.split(default)[0] if default else ""
            elif word == "ENV":
                for token in shlex.split(rest):
                    k, _, v = token.partition("=")
                    self.env[k] = self.expand(v)
            elif word == "WORKDIR":
                self.workdir = str(PurePosixPath(self.workdir) / self.expand(rest))
            elif word == "COPY":
                tokens = [t for t in shlex.split(rest) if not t.startswith("--")]
                dest = self.expand(tokens[-1])
                if not dest.startswith("/"):
                    dest = str(PurePosixPath(self.workdir) / dest)
                self.copies.append(([self.expand(t) for t in tokens[:-1]], dest.rstrip("/") or "/"))
            elif word == "EXPOSE":
                self.exposed |= {int(p.split("/")[0]) for p in rest.split()}
            elif word == "RUN":
                self.runs.append(rest)
            elif word == "CMD":
                self.cmd = json.loads(rest)
            elif word == "USER":
                self.user = rest

    def expand(self, text: str) -> str:
        values = {**self.args, **self.env}
        return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: values.get(m.group(1), m.group(0)), text)

    def copied_sources(self) -> set[str]:
        return {s.rstrip("/").removeprefix("./") for sources, _ in self.copies for s in sources}

    def destination_of(self, source: str) -> str:
        """Absolute path in the image of a repo path (a COPY source or a file under one)."""
        source = source.rstrip("/")
        for sources, dest in self.copies:
            for s in sources:
                s = s.rstrip("/").removeprefix("./")
                if source == s or source.startswith(s + "/"):
                    rest = source[len(s) :].lstrip("/")
                    if len(sources) > 1:  # `COPY a b ./` puts each source inside dest
                        return str(PurePosixPath(dest) / source)
                    return str(PurePosixPath(dest) / rest) if rest else dest
        raise AssertionError(f"{source} is not copied by {self.path.name}")


def dockerignore_patterns(path: Path) -> list[tuple[bool, re.Pattern]]:
    """(is_exception, regex) per line, with Docker's pattern syntax (**, *, ?)."""
    out = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:].strip() if negate else line
        pattern = str(PurePosixPath(pattern.strip("/"))) if pattern.strip("/") else "."
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        out.append((negate, re.compile(regex)))
    return out


def context_includes(rel_path: str, patterns: list[tuple[bool, re.Pattern]]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent directories wins."""
    parts = rel_path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, regex in patterns:
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return not excluded


def repo_files(rel: str) -> Iterator[str]:
    root = REPO / rel
    if root.is_file():
        yield rel
        return
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc":
            yield p.relative_to(REPO).as_posix()


# ============================================================================= compose


def test_yaml_files_have_no_duplicate_keys():
    for path in (COMPOSE, COMPOSE_GPU, INSTANCE, WORKSPACE, HELM_VALUES):
        assert load_yaml(path), path
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate key"):
        yaml.load("a: 1\nb: 2\na: 3\n", Loader=_StrictLoader)  # noqa: S506


def test_compose_defines_the_stack():
    services = compose()["services"]
    assert {"postgres", "minio", "minio-init", "code", "webserver", "daemon", "chroma"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["minio"]["image"].startswith("minio/minio")
    assert services["minio-init"]["image"].startswith("minio/mc")
    assert services["chroma"].get("profiles") == ["chroma"], "chroma is optional: only with --profile chroma"
    for name in ("postgres", "minio", "minio-init", *DAGSTER_SERVICES):
        assert not services[name].get("profiles"), f"{name} must start without a profile"


def test_code_server_serves_the_pyproject_module_where_the_workspace_looks():
    tool = pyproject()["tool"]["dagster"]
    services = compose()["services"]
    args = command_args(services["code"])
    assert args[:3] == ["dagster", "code-server", "start"]
    assert option(args, "-m", "--module-name") == tool["module_name"]
    assert option(args, "-h", "--host") == "0.0.0.0"

    (entry,) = load_yaml(WORKSPACE)["load_from"]
    grpc = entry["grpc_server"]
    assert grpc["host"] == "code" and grpc["host"] in services
    assert grpc["port"] == int(option(args, "-p", "--port"))
    assert grpc["location_name"] == tool["code_location_name"]


@pytest.mark.parametrize("name", ["webserver", "daemon"])
def test_webserver_and_daemon_load_the_docker_workspace(name):
    args = command_args(compose()["services"][name])
    assert args[0] == {"webserver": "dagster-webserver", "daemon": "dagster-daemon"}[name]
    workspace = option(args, "-w", "--workspace")
    image = DockerImage(DOCKER / "Dockerfile")
    in_image = workspace if workspace.startswith("/") else str(PurePosixPath(image.workdir) / workspace)
    assert image.destination_of("docker/workspace.yaml") == in_image


def test_webserver_published_on_3000():
    services = compose()["services"]
    args = command_args(services["webserver"])
    assert option(args, "-p", "--port") == "3000" and option(args, "-h", "--host") == "0.0.0.0"
    assert "3000:3000" in [str(p) for p in services["webserver"]["ports"]]


def test_dagster_processes_share_one_instance_config():
    """Same image build for code, webserver, daemon; DAGSTER_HOME (with docker/dagster.yaml) is never overridden."""
    services = compose()["services"]
    builds = {name: (services[name]["image"], services[name]["build"]["context"], services[name]["build"]["dockerfile"]) for name in DAGSTER_SERVICES}
    assert len(set(builds.values())) == 1, builds
    image_name, context, dockerfile = builds["code"]
    assert (DOCKER / context).resolve() == REPO and (REPO / dockerfile) == DOCKER / "Dockerfile"
    for name in DAGSTER_SERVICES:
        assert "DAGSTER_HOME" not in service_env(services[name])
        for _, target in mounts(services[name]):
            assert not target.startswith(DAGSTER_HOME), f"{name} mounts over DAGSTER_HOME"
    image = DockerImage(DOCKER / "Dockerfile")
    assert image.env["DAGSTER_HOME"] == DAGSTER_HOME
    assert image.destination_of("docker/dagster.yaml") == f"{DAGSTER_HOME}/dagster.yaml"


def test_every_instance_env_var_is_set_in_every_dagster_process():
    names = instance_env_refs(load_yaml(INSTANCE))
    assert {"DAGSTER_POSTGRES_USER", "DAGSTER_POSTGRES_PASSWORD", "DAGSTER_POSTGRES_DB", "DAGSTER_POSTGRES_HOSTNAME"} <= names
    services = compose()["services"]
    for name in DAGSTER_SERVICES:
        env = service_env(services[name])
        missing = sorted(n for n in names if not env.get(n))
        assert not missing, f"{name} lacks {missing}"


@pytest.mark.parametrize("shell_env", [{}, {"DAGSTER_POSTGRES_USER": "u1", "DAGSTER_POSTGRES_PASSWORD": "p1", "DAGSTER_POSTGRES_DB": "d1"}])
def test_postgres_credentials_match_the_dagster_processes(shell_env):
    services = compose(shell_env)["services"]
    pg = service_env(services["postgres"])
    for name in DAGSTER_SERVICES:
        env = service_env(services[name])
        assert env["DAGSTER_POSTGRES_USER"] == pg["POSTGRES_USER"]
        assert env["DAGSTER_POSTGRES_PASSWORD"] == pg["POSTGRES_PASSWORD"]
        assert env["DAGSTER_POSTGRES_DB"] == pg["POSTGRES_DB"]
        assert env["DAGSTER_POSTGRES_HOSTNAME"] == "postgres"
    if shell_env:
        assert pg["POSTGRES_USER"] == "u1" and pg["POSTGRES_DB"] == "d1"


def test_code_location_writes_to_the_minio_bucket_it_creates():
    services = compose()["services"]
    env = service_env(services["code"])
    for name in ("MEDTRINITY_STORAGE", "MEDTRINITY_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MEDTRINITY_KNOWLEDGE_DIR"):
        assert env.get(name), f"code lacks {name}"
    storage = urlparse(env["MEDTRINITY_STORAGE"])
    assert storage.scheme == "s3" and storage.netloc and storage.path.strip("/")
    endpoint = urlparse(env["MEDTRINITY_S3_ENDPOINT_URL"])
    assert endpoint.hostname == "minio" and endpoint.port == 9000
    minio = services["minio"]
    minio_env = service_env(minio)
    assert "9000:9000" in [str(p) for p in minio["ports"]]
    assert env["AWS_ACCESS_KEY_ID"] == minio_env["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == minio_env["MINIO_ROOT_PASSWORD"]
    assert len(minio_env["MINIO_ROOT_PASSWORD"]) >= 8, "MinIO refuses root passwords under 8 characters"

    init = services["minio-init"]
    script = " ".join(command_args(init)) if isinstance(init["command"], str) else "\n".join(init["command"])
    assert f"http://{endpoint.hostname}:{endpoint.port}" in script
    assert re.search(rf"mc mb (--ignore-existing|-p) local/{re.escape(storage.netloc)}\b", script), script
    assert service_env(init)["MINIO_ROOT_USER"] == minio_env["MINIO_ROOT_USER"]
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    assert services["code"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"


def test_shell_overrides_switch_to_real_s3():
    env = service_env(compose({"MEDTRINITY_STORAGE": "s3://my-bucket/prefix", "MEDTRINITY_S3_ENDPOINT_URL": "", "AWS_ACCESS_KEY_ID": "AKIA"})["services"]["code"])
    assert env["MEDTRINITY_STORAGE"] == "s3://my-bucket/prefix"
    assert env["MEDTRINITY_S3_ENDPOINT_URL"] == "", "an empty endpoint must mean AWS, not fall back to MinIO"
    assert env["AWS_ACCESS_KEY_ID"] == "AKIA"


def test_every_medtrinity_variable_is_one_the_code_reads():
    known = code_env_names()
    assert {"MEDTRINITY_STORAGE", "MEDTRINITY_S3_ENDPOINT_URL", "MEDTRINITY_KNOWLEDGE_DIR", "MEDTRINITY_CHROMA_URL"} <= known
    used: dict[str, set[str]] = {}
    for name, svc in compose()["services"].items():
        used[f"compose:{name}"] = {k for k in service_env(svc) if k.startswith("MEDTRINITY_")}
    for name, svc in load_yaml(COMPOSE_GPU)["services"].items():
        used[f"compose.gpu:{name}"] = {k for k in service_env(svc) if k.startswith("MEDTRINITY_")}
    for dockerfile in DOCKERFILES:
        used[dockerfile] = {k for k in DockerImage(DOCKER / dockerfile).env if k.startswith("MEDTRINITY_")}
    for dep in load_yaml(HELM_VALUES)["dagster-user-deployments"]["deployments"]:
        used[f"helm:{dep['name']}"] = {k for k in dep.get("env", {}) if k.startswith("MEDTRINITY_")}
    unknown = {where: sorted(names - known) for where, names in used.items() if names - known}
    assert not unknown, f"variables no code reads (typo?): {unknown}"


def test_depends_on_targets_exist_and_wait_for_health():
    services = compose()["services"]
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for target, spec in (deps.items() if isinstance(deps, Mapping) else ((d, {}) for d in deps)):
            assert target in services, f"{name} depends on unknown {target}"
            condition = spec.get("condition", "service_started")
            assert condition in conditions
            if condition == "service_healthy":
                assert services[target].get("healthcheck"), f"{target} has no healthcheck for {name}"
            if condition == "service_completed_successfully":
                assert str(services[target].get("restart", "no")) == "no", f"{target} must be one-shot"
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["code"]["condition"] == "service_healthy"
    assert services["code"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    code_check = services["code"]["healthcheck"]["test"]
    assert "grpc-health-check" in code_check and code_check[code_check.index("-p") + 1] == "4000"


def test_volumes_are_declared_used_and_shared_where_needed():
    spec = compose()
    services, declared = spec["services"], set(spec.get("volumes") or {})
    used = {v for svc in services.values() for v in named_mounts(svc).values()}
    assert used <= declared, f"undeclared volumes: {used - declared}"
    assert declared <= used, f"declared but unused volumes: {declared - used}"

    # Run workers (in `code`) write compute logs that the webserver shows: one shared volume.
    compute_logs = load_yaml(INSTANCE)["compute_logs"]["config"]["base_dir"]

    def volume_holding(service: str, path: str) -> str | None:
        hits = [(t, v) for t, v in named_mounts(services[service]).items() if path == t or path.startswith(t.rstrip("/") + "/")]
        return max(hits)[1] if hits else None

    assert volume_holding("code", compute_logs) is not None
    assert volume_holding("code", compute_logs) == volume_holding("webserver", compute_logs)
    assert volume_holding("code", load_yaml(INSTANCE)["local_artifact_storage"]["config"]["base_dir"]) is not None
    knowledge_dir = service_env(services["code"])["MEDTRINITY_KNOWLEDGE_DIR"]
    assert volume_holding("code", knowledge_dir) is not None, "the knowledge index must outlive the container"
    assert volume_holding("postgres", "/var/lib/postgresql/data") is not None
    assert volume_holding("minio", option(command_args(services["minio"]), "server")) is not None


def test_our_image_creates_every_mount_point_for_its_user():
    """Fresh named volumes take the ownership of the image directory they mount on."""
    services = compose()["services"]
    image = DockerImage(DOCKER / "Dockerfile")
    assert image.user != "root"
    created = {p for r in image.runs for m in re.findall(r"mkdir -p ([^&]+)", r) for p in m.split()}
    owned = {p for r in image.runs for m in re.findall(r"chown -R \S+ ([^&]+)", r) for p in m.split()}
    for name, svc in services.items():
        if svc.get("image") != "medtrinity:cpu":
            continue
        for target in named_mounts(svc):
            assert target in created, f"{name}: {target} is not created in the image"
            assert any(target == o or target.startswith(o + "/") for o in owned), f"{name}: {target} not owned by the image user"


def test_chroma_service_runs_the_client_release_on_its_volume():
    from importlib.metadata import entry_points

    assert any(ep.name == "chroma" for ep in entry_points(group="console_scripts") if ep.dist and ep.dist.name == "chromadb")
    chroma = compose()["services"]["chroma"]
    args = command_args(chroma)
    assert args[:2] == ["chroma", "run"]
    assert option(args, "--path") in named_mounts(chroma)
    port = option(args, "--port")
    assert option(args, "--host") == "0.0.0.0"
    assert f"http://chroma:{port}" in COMPOSE.read_text() and f"http://chroma:{port}" in (DOCKER / "README.md").read_text()
    assert f"localhost:{port}/api/v2/heartbeat" in " ".join(chroma["healthcheck"]["test"])


def test_gpu_override_turns_the_code_location_into_a_cuda_worker():
    base, override = compose(), compose(path=COMPOSE_GPU)
    assert set(override["services"]) <= set(base["services"]), "the override adds no new service"
    merged = deep_merge(base, override)["services"]
    code = merged["code"]
    assert (DOCKER / code["build"]["context"]).resolve() == REPO
    assert code["build"]["dockerfile"] == "docker/Dockerfile.cuda"
    assert code["image"] != base["services"]["code"]["image"]
    (device,) = code["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert int(device["count"]) >= 1
    assert service_env(code)["MEDTRINITY_DEVICE"] == "cuda"
    # Everything else of the code service survives the merge (env, command, volumes).
    assert service_env(code)["MEDTRINITY_STORAGE"] == service_env(base["services"]["code"])["MEDTRINITY_STORAGE"]
    assert code["command"] == base["services"]["code"]["command"]
    # webserver/daemon still build the CPU image themselves, so nothing tries to pull it.
    for name in ("webserver", "daemon"):
        assert merged[name]["build"]["dockerfile"] == "docker/Dockerfile"


# ============================================================================= instance config


def _instance_env(monkeypatch) -> dict[str, str]:
    env = service_env(compose()["services"]["daemon"])
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def test_docker_instance_config_passes_dagsters_validation(tmp_path, monkeypatch):
    from dagster._config import process_config
    from dagster._core.instance.config import dagster_instance_config
    from dagster._core.storage.config import pg_config
    from dagster_postgres.utils import pg_url_from_config

    env = _instance_env(monkeypatch)
    (tmp_path / "dagster.yaml").write_text(INSTANCE.read_text())
    config, custom_class = dagster_instance_config(str(tmp_path))
    assert custom_class is None
    assert config["telemetry"]["enabled"] is False

    resolved = process_config(pg_config(), config["storage"]["postgres"])
    assert resolved.success, resolved.errors
    url = urlparse(pg_url_from_config(resolved.value))
    assert (url.hostname, url.port, url.path.strip("/")) == ("postgres", 5432, env["DAGSTER_POSTGRES_DB"])
    assert url.username == env["DAGSTER_POSTGRES_USER"]


def test_instance_validation_can_fail(tmp_path, monkeypatch):
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import dagster_instance_config

    _instance_env(monkeypatch)
    broken = load_yaml(INSTANCE)
    broken["concurrency"]["runs"]["tag_concurrency_limits"][0]["limit"] = "one"
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(broken))
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def _local_instance(config: dict, base: Path):
    """A real DagsterInstance from `config`, with Postgres and volume paths swapped for `base`."""
    from dagster import DagsterInstance

    config = dict(config)
    config.pop("storage", None)
    config["storage"] = {"sqlite": {"base_dir": str(base / "storage")}}
    for key in ("local_artifact_storage", "compute_logs"):
        if key in config:
            config[key] = {**config[key], "config": {**config[key]["config"], "base_dir": str(base / key)}}
    base.mkdir(parents=True, exist_ok=True)
    (base / "dagster.yaml").write_text(yaml.safe_dump(config))
    return DagsterInstance.from_config(str(base))


def test_docker_instance_queues_runs_like_the_local_instance(tmp_path, monkeypatch):
    from dagster._core.launcher import DefaultRunLauncher
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._core.storage.local_compute_log_manager import LocalComputeLogManager

    _instance_env(monkeypatch)
    docker_cfg, local_cfg = load_yaml(INSTANCE), load_yaml(REPO / "dagster.yaml")
    assert docker_cfg["concurrency"] == local_cfg["concurrency"]
    assert docker_cfg["run_retries"] == local_cfg["run_retries"]
    for key, value in local_cfg["run_monitoring"].items():
        assert docker_cfg["run_monitoring"][key] == value
    assert docker_cfg["telemetry"] == local_cfg["telemetry"] == {"enabled": False}

    with _local_instance(docker_cfg, tmp_path / "docker") as docker, _local_instance(local_cfg, tmp_path / "local") as local:
        assert isinstance(docker.run_coordinator, QueuedRunCoordinator)
        assert isinstance(docker.run_launcher, DefaultRunLauncher)
        assert isinstance(docker.compute_log_manager, LocalComputeLogManager)
        d, l = docker.get_concurrency_config(), local.get_concurrency_config()
        assert d.run_queue_config == l.run_queue_config
        assert d.pool_config == l.pool_config
        assert d.run_queue_config.max_concurrent_runs == 4
        assert d.pool_config.default_pool_limit == 1
        tags = {t["key"]: t for t in d.run_queue_config.tag_concurrency_limits}
        assert tags["medtrinity/gpu"]["value"] == "true" and tags["medtrinity/gpu"]["limit"] == 1
        assert tags["dagster/backfill"]["value"] == {"applyLimitPerUniqueValue": True}
        assert docker.run_retries_enabled and docker.run_retries_max_retries == local.run_retries_max_retries == 2
        assert docker.run_monitoring_enabled


# ============================================================================= Dockerfiles


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_image_holds_the_project_its_data_and_the_instance(dockerfile):
    image = DockerImage(DOCKER / dockerfile)
    assert re.fullmatch(r"python:3\.11[\w.\-]*", image.base), image.base
    project = pyproject()["project"]
    required = {"pyproject.toml", project["readme"], "medtrinity_assets", "medtrinity_resources", "data", "docker/dagster.yaml", "docker/workspace.yaml"}
    assert required <= image.copied_sources(), required - image.copied_sources()
    for source in image.copied_sources():
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
    assert image.env["DAGSTER_HOME"] == DAGSTER_HOME
    assert image.destination_of("docker/dagster.yaml") == f"{DAGSTER_HOME}/dagster.yaml"
    assert image.workdir == "/opt/dagster/app"
    assert image.destination_of("docker/workspace.yaml") == "/opt/dagster/app/workspace.yaml"
    assert {3000, 4000} <= image.exposed
    assert any(re.search(r"pip install[^&]* \.(\s|$)", r) for r in image.runs), "the project itself is installed"
    assert image.user != "root"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_image_points_the_code_at_the_copied_data(dockerfile, monkeypatch):
    """Installed into site-packages, the code cannot find data/ by itself: the image says where it is."""
    from medtrinity_assets import settings

    image = DockerImage(DOCKER / dockerfile)
    for var, default in (("MEDTRINITY_CATALOG", settings.catalog_path), ("MEDTRINITY_CORPORA", settings.corpora_path)):
        monkeypatch.delenv(var, raising=False)
        repo_rel = Path(default()).relative_to(settings.REPO_ROOT).as_posix()
        assert image.env[var] == image.destination_of(repo_rel), var
    assert (REPO / Path(settings.catalog_path()).relative_to(settings.REPO_ROOT)).is_file()
    assert image.env["MEDTRINITY_KNOWLEDGE_DIR"].startswith(image.env["MEDTRINITY_HOME"] + "/")
    assert image.env["HF_HUB_OFFLINE"] == "1" and image.env["YOLO_OFFLINE"] == "1"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_image_pins_match_pyproject(dockerfile):
    pins = pinned_versions()
    image = DockerImage(DOCKER / dockerfile)
    assert image.args["TORCH_VERSION"] == pins["torch"]
    assert image.args["TORCHVISION_VERSION"] == pins["torchvision"]
    (extra,) = shlex.split(image.args["DAGSTER_EXTRAS"])
    name, _, version = extra.partition("==")
    assert name == "dagster-k8s" and version == pins["dagster-postgres"] == pins["dagster-aws"]
    assert any("TORCH_INDEX_URL" in r and "torch==${TORCH_VERSION}" in r for r in image.runs)
    if dockerfile == "Dockerfile":
        assert image.args["TORCH_INDEX_URL"].rstrip("/").endswith("/whl/cpu"), "CPU image takes CPU-only torch wheels"
    else:
        assert image.env["NVIDIA_DRIVER_CAPABILITIES"] and image.env["MEDTRINITY_DEVICE"] == "cuda"


def test_image_cmd_is_the_compose_code_server():
    assert DockerImage(DOCKER / "Dockerfile").cmd == command_args(compose()["services"]["code"])


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_build_context_ships_what_is_copied_and_nothing_heavy(dockerfile):
    ignore = DOCKER / f"{dockerfile}.dockerignore"
    assert ignore.is_file(), "BuildKit reads <Dockerfile>.dockerignore next to the Dockerfile"
    patterns = dockerignore_patterns(ignore)
    image = DockerImage(DOCKER / dockerfile)
    for source in image.copied_sources():
        files = list(repo_files(source))
        assert files, source
        left_out = [f for f in files if not context_includes(f, patterns)]
        assert not left_out, f"{dockerfile}: COPY {source} but the context drops {left_out[:5]}"
    for heavy in (".venv/bin/python", ".git/HEAD", "output/dataset/x.png", ".dagster_home/dagster.yaml", "medtrinity_assets/__pycache__/x.pyc"):
        assert not context_includes(heavy, patterns), heavy


def test_dockerignore_matcher_follows_docker_rules():
    patterns = dockerignore_patterns(DOCKER / "Dockerfile.dockerignore")
    assert context_includes("data/catalog.yaml", patterns)
    assert not context_includes("tests/conftest.py", patterns)
    assert not context_includes("data/sources/__pycache__/a.pyc", patterns)


# ============================================================================= Helm values

CHART_TOP_LEVEL = {
    "global", "nameOverride", "fullnameOverride", "rbacEnabled", "imagePullSecrets", "dagsterWebserver",
    "dagsterDaemon", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
    "generateCeleryConfigSecret", "rabbitmq", "redis", "runLauncher", "scheduler", "computeLogManager",
    "pythonLogs", "flower", "ingress", "serviceAccount", "retention", "migrate", "telemetry",
    "additionalInstanceConfig", "busybox", "extraManifests", "concurrency", "defsStateStorage",
}
K8S_RUN_LAUNCHER_KEYS = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile", "envConfigMaps",
    "envSecrets", "envVars", "volumeMounts", "volumes", "labels", "failPodOnRunFailure", "resources",
    "schedulerName", "securityContext", "runK8sConfig",
}
RUN_K8S_CONFIG_KEYS = {"containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata"}
USER_DEPLOYMENT_KEYS = {
    "name", "image", "port", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns", "env",
    "envConfigMaps", "envSecrets", "annotations", "nodeSelector", "affinity", "tolerations", "podSecurityContext",
    "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe", "labels", "volumeMounts",
    "volumes", "schedulerName", "deploymentNamespace", "initContainers", "sidecarContainers", "deploymentStrategy",
}
POSTGRESQL_KEYS = {"enabled", "image", "postgresqlHost", "postgresqlUsername", "postgresqlPassword", "postgresqlDatabase", "postgresqlParams", "postgresqlScheme", "service"}


def test_helm_values_use_the_charts_keys():
    values = load_yaml(HELM_VALUES)
    assert set(values) <= CHART_TOP_LEVEL, set(values) - CHART_TOP_LEVEL
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher" and set(launcher["config"]) == {"k8sRunLauncher"}
    k8s = launcher["config"]["k8sRunLauncher"]
    assert set(k8s) <= K8S_RUN_LAUNCHER_KEYS, set(k8s) - K8S_RUN_LAUNCHER_KEYS
    assert set(k8s["runK8sConfig"]) <= RUN_K8S_CONFIG_KEYS
    for dep in values["dagster-user-deployments"]["deployments"]:
        assert set(dep) <= USER_DEPLOYMENT_KEYS, set(dep) - USER_DEPLOYMENT_KEYS
    assert set(values["postgresql"]) <= POSTGRESQL_KEYS
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"]
    assert values["generatePostgresqlPasswordSecret"] is False, "the password comes from a Secret made outside the chart"
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "QueuedRunCoordinator"


def test_helm_user_deployment_serves_the_code_location():
    tool = pyproject()["tool"]["dagster"]
    values = load_yaml(HELM_VALUES)
    user = values["dagster-user-deployments"]
    assert user["enabled"] is True
    (dep,) = user["deployments"]
    assert dep["codeServerArgs"] == ["-m", tool["module_name"]]
    assert dep["port"] == 4000
    assert dep["includeConfigInLaunchedRuns"]["enabled"] is True, "run pods must inherit env, secrets and volumes"
    env = dep["env"]
    assert urlparse(env["MEDTRINITY_STORAGE"]).scheme == "s3"
    secrets = {s["name"] for s in dep["envSecrets"]}
    assert secrets and secrets <= {s["name"] for s in values["dagsterWebserver"]["envSecrets"]}, "the webserver reads S3 compute logs"
    mounts_ = {m["name"]: m["mountPath"] for m in dep["volumeMounts"]}
    volumes = {v["name"]: v for v in dep["volumes"]}
    knowledge = [name for name, path in mounts_.items() if path == env["MEDTRINITY_KNOWLEDGE_DIR"]]
    assert knowledge and "persistentVolumeClaim" in volumes[knowledge[0]]
    assert values["computeLogManager"]["type"] == "S3ComputeLogManager"


def test_helm_queue_matches_the_instance():
    local = load_yaml(REPO / "dagster.yaml")
    daemon = load_yaml(HELM_VALUES)["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] == local["concurrency"]["runs"]["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == local["concurrency"]["runs"]["tag_concurrency_limits"]
    assert daemon["runRetries"] == {"enabled": local["run_retries"]["enabled"], "maxRetries": local["run_retries"]["max_retries"]}
    assert daemon["runMonitoring"]["enabled"] is True


def gpu_tag_from_docs() -> dict:
    text = DEPLOYMENT_DOC.read_text()
    section = text[text.index("### GPU runs on Kubernetes") :]
    block = re.search(r"```json\n(.*?)```", section, re.S)
    assert block, "docs/deployment.md: no JSON block for the dagster-k8s/config tag"
    return json.loads(block.group(1))


def test_gpu_tag_yields_a_gpu_job_on_top_of_the_helm_run_config():
    """The K8sRunLauncher's merge of runK8sConfig and the run's `dagster-k8s/config` tag, built offline."""
    pytest.importorskip("dagster_k8s")
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import (
        USER_DEFINED_K8S_CONFIG_KEY,
        DagsterK8sJobConfig,
        UserDefinedDagsterK8sConfig,
        construct_dagster_k8s_job,
        get_user_defined_k8s_config,
    )

    assert USER_DEFINED_K8S_CONFIG_KEY == "dagster-k8s/config"
    values = load_yaml(HELM_VALUES)
    (dep,) = values["dagster-user-deployments"]["deployments"]
    run_k8s = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    snake = {"containerConfig": "container_config", "podSpecConfig": "pod_spec_config", "podTemplateSpecMetadata": "pod_template_spec_metadata", "jobSpecConfig": "job_spec_config", "jobMetadata": "job_metadata"}
    launcher = K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict({snake[k]: v for k, v in run_k8s.items()}))
    tag = gpu_tag_from_docs()
    run_tags = {USER_DEFINED_K8S_CONFIG_KEY: json.dumps(tag), "medtrinity/gpu": "true"}
    merged = launcher.merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(run_tags)))

    cpu_image = f"{dep['image']['repository']}:{dep['image']['tag']}"
    job_config = DagsterK8sJobConfig(job_image=cpu_image, dagster_home=DAGSTER_HOME, instance_config_map="medtrinity-dagster-instance")
    job = construct_dagster_k8s_job(job_config, ["dagster", "api", "execute_run"], "dagster-run-0123", merged.run_k8s_config)
    pod = job.spec.template.spec
    (container,) = pod.containers
    assert container.image == f"{cpu_image}-cuda", "GPU runs use the CUDA image built from the same commit"
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    requests = run_k8s["containerConfig"]["resources"]["requests"]
    assert container.resources.requests == requests, "the tag adds the GPU on top of the Helm CPU/memory requests"
    assert {e.name: e.value for e in container.env}["MEDTRINITY_DEVICE"] == "cuda"
    assert pod.node_selector and any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in pod.tolerations)
    assert job.spec.ttl_seconds_after_finished == run_k8s["jobSpecConfig"]["ttlSecondsAfterFinished"]


def test_k8s_config_with_a_misspelt_field_is_rejected():
    """The check above can fail: a wrong Kubernetes field name does not build."""
    pytest.importorskip("dagster_k8s")
    from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config

    tag = gpu_tag_from_docs()
    tag["pod_spec_config"]["node_selectr"] = tag["pod_spec_config"].pop("node_selector")
    with pytest.raises(Exception, match="node_selectr"):
        config = get_user_defined_k8s_config({"dagster-k8s/config": json.dumps(tag)})
        construct_dagster_k8s_job(DagsterK8sJobConfig(job_image="x", dagster_home=DAGSTER_HOME, instance_config_map="i"), ["a"], "j", config)


# ============================================================================= docs


def test_deployment_doc_covers_the_knobs_and_the_queue():
    text = DEPLOYMENT_DOC.read_text()
    for needle in (
        "SQLite", "Postgres", "MinIO", "Kubernetes", "max_concurrent_runs", "medtrinity/gpu",
        "dagster instance concurrency set gpu", "dagster/backfill", "applyLimitPerUniqueValue", "run_retries",
        "dagster asset materialize", "in-process", "dagster-k8s/config", "nvidia.com/gpu", "docker/helm/values.yaml",
    ):
        assert needle in text, needle
    local = load_yaml(REPO / "dagster.yaml")["concurrency"]["runs"]
    assert f"| {local['max_concurrent_runs']} |" in text, "the documented run limit equals dagster.yaml"
    readme = (DOCKER / "README.md").read_text()
    for needle in ("docker compose -f docker/docker-compose.yml up --build", "--profile chroma", "docker-compose.gpu.yml", "MEDTRINITY_S3_ENDPOINT_URL="):
        assert needle in readme, needle
    assert "dagster-k8s/config" in HELM_VALUES.read_text() and "docs/deployment.md" in HELM_VALUES.read_text()
