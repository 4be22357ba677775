"""Static checks of the Kubernetes manifests in deploy/k8s (no cluster and no kustomize needed).

A small kustomize (the features the manifests use: ``resources``, ``configMapGenerator``,
``patches`` by target or by name with strategic-merge semantics, ``namespace``, ``images``)
builds the base and every overlay; the checks then hold the built objects to the code: every
WIREWATCH_* variable is a Settings field and the values make valid Settings, every command is
one the CLI runs, probes and scrapes point at the services' web port, every ConfigMap, Secret
and volume a pod uses exists in the build or is created by an operator of the build (ECK,
Strimzi) or is documented as created by hand, every password and CA file is a file of a mounted
volume, nothing secret is written literally. Each check returns its problems; the last tests
break the manifests on purpose to show that the checks see it. If ``kubectl`` or ``kustomize``
is installed, the real kustomize must build the same objects.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import tempfile
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import click
import pytest
import yaml
from pydantic import SecretStr, ValidationError

from conftest import make_settings
from wirewatch.cli import main as cli_main
from wirewatch.core.feeds import load_feeds
from wirewatch.core.settings import SERVICES, Settings

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = K8S / "overlays"
README = K8S / "README.md"
BUILDS: dict[str, Path] = {"base": BASE, **{p.name: p for p in sorted(OVERLAYS.iterdir()) if p.is_dir()}}

SETTINGS_ENV_NAMES: frozenset[str] = frozenset(f"WIREWATCH_{name.upper()}" for name in Settings.model_fields)
WEB_PORT_DEFAULT: int = Settings.model_fields["web_port"].default
#: Secrets the manifests use that nobody in the build creates: made by hand (deploy/k8s/README.md).
DOCUMENTED_SECRETS: dict[str, frozenset[str]] = {"wirewatch-elasticsearch": frozenset({"password"})}
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"})
#: Strategic-merge keys of the lists the patches touch (built-in kinds only).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "env": "name",
    "ports": "containerPort",
    "imagePullSecrets": "name",
}
BUILTIN_API_VERSIONS = frozenset({"v1", "apps/v1", "batch/v1", "policy/v1", "autoscaling/v2"})
CLUSTER_SCOPED_KINDS = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
)
KUSTOMIZATION_KEYS = frozenset(
    {"apiVersion", "kind", "namespace", "resources", "patches", "configMapGenerator", "images"}
)


# --- a small kustomize -------------------------------------------------------------------------


class KustomizeError(ValueError):
    """A kustomization this resolver cannot build (or kustomize would refuse)."""


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
    for doc in docs:
        if not isinstance(doc, dict):
            raise KustomizeError(f"{path}: a document is not a mapping")
    return docs


def strategic_merge(target: Any, patch: Any, *, keyed: bool) -> Any:
    """``patch`` merged into ``target`` (strategic merge for built-in kinds, JSON merge else)."""
    if isinstance(patch, dict) and isinstance(target, dict):
        if any(str(key).startswith("$") for key in patch):
            raise KustomizeError(f"strategic-merge directives are not supported: {sorted(patch)}")
        out = dict(target)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out and keyed and key in MERGE_KEYS and isinstance(value, list):
                out[key] = merge_list(out[key], value, MERGE_KEYS[key])
            elif key in out:
                out[key] = strategic_merge(out[key], value, keyed=keyed)
            else:
                out[key] = copy.deepcopy(value)
        return out
    return copy.deepcopy(patch)


def merge_list(target: list[Any], patch: list[Any], key: str) -> list[Any]:
    out = [copy.deepcopy(item) for item in target]
    for item in patch:
        index = next((i for i, old in enumerate(out) if old.get(key) == item.get(key)), None)
        if index is None:
            out.append(copy.deepcopy(item))
        else:
            out[index] = strategic_merge(out[index], item, keyed=True)
    return out


def selected(obj: dict[str, Any], target: dict[str, Any]) -> bool:
    unknown = set(target) - {"kind", "name", "labelSelector"}
    if unknown:
        raise KustomizeError(f"patch target fields not supported: {sorted(unknown)}")
    if "kind" in target and obj["kind"] != target["kind"]:
        return False
    if "name" in target and not re.fullmatch(target["name"], obj["metadata"]["name"]):
        return False
    labels = obj["metadata"].get("labels") or {}
    for term in filter(None, (target.get("labelSelector") or "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


@dataclass
class Build:
    name: str
    objects: list[dict[str, Any]]
    files: set[Path] = field(default_factory=set)  # every file the build read

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj.get("kind") == kind]

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name), None)


def kustomize(directory: Path, files: set[Path] | None = None) -> Build:
    files = set() if files is None else files
    kfile = directory / "kustomization.yaml"
    if not kfile.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    files.add(kfile.resolve())
    spec = yaml.safe_load(kfile.read_text(encoding="utf-8")) or {}
    unknown = set(spec) - KUSTOMIZATION_KEYS
    if unknown:
        raise KustomizeError(f"{kfile}: this resolver does not model {sorted(unknown)}")
    objects: list[dict[str, Any]] = []
    for entry in spec.get("resources") or []:
        path = (directory / entry).resolve()
        if path.is_dir():
            objects += kustomize(path, files).objects
        elif path.is_file():
            files.add(path)
            objects += yaml_documents(path)
        else:
            raise KustomizeError(f"{kfile}: resource {entry!r} does not exist")
    for generator in spec.get("configMapGenerator") or []:
        options = generator.get("options") or {}
        if not options.get("disableNameSuffixHash"):
            raise KustomizeError(f"{kfile}: {generator['name']}: name hashes are not modelled")
        if set(generator) - {"name", "files", "options"}:
            raise KustomizeError(f"{kfile}: {generator['name']}: only `files` generators are modelled")
        data = {}
        for item in generator.get("files") or []:
            key, _, source = item.rpartition("=") if "=" in item else ("", "", item)
            path = (directory / source).resolve()
            if not path.is_file():
                raise KustomizeError(f"{kfile}: {generator['name']}: {source!r} does not exist")
            files.add(path)
            data[key or path.name] = path.read_text(encoding="utf-8")
        metadata = {
            "name": generator["name"],
            **({"labels": options["labels"]} if "labels" in options else {}),
        }
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
    for entry in spec.get("patches") or []:
        if "path" not in entry or set(entry) - {"path", "target"}:
            raise KustomizeError(f"{kfile}: only file patches with an optional target are modelled")
        path = (directory / entry["path"]).resolve()
        if not path.is_file():
            raise KustomizeError(f"{kfile}: patch {entry['path']!r} does not exist")
        files.add(path)
        docs = yaml_documents(path)
        if len(docs) != 1 or "kind" not in docs[0]:
            raise KustomizeError(f"{path}: one strategic-merge patch per file")
        patch = docs[0]
        target = entry.get("target") or {"kind": patch["kind"], "name": re.escape(patch["metadata"]["name"])}
        hits = [i for i, obj in enumerate(objects) if selected(obj, target)]
        if not hits:
            raise KustomizeError(f"{kfile}: patch {entry['path']} selects nothing ({target})")
        body = {key: value for key, value in patch.items() if key not in {"apiVersion", "kind", "metadata"}}
        meta = {key: value for key, value in (patch.get("metadata") or {}).items() if key != "name"}
        for i in hits:
            obj = objects[i]
            keyed = obj["apiVersion"] in BUILTIN_API_VERSIONS
            merged = strategic_merge(obj, body, keyed=keyed)
            merged["metadata"] = strategic_merge(obj["metadata"], meta, keyed=False)
            objects[i] = merged
    if spec.get("namespace"):
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED_KINDS:
                obj["metadata"]["namespace"] = spec["namespace"]
    for image in spec.get("images") or []:
        for obj in objects:
            for _, container in containers(obj):
                name, tag = split_image(container.get("image", ""))
                if name == image["name"]:
                    new_tag = image.get("newTag", tag)
                    container["image"] = image.get("newName", name) + (f":{new_tag}" if new_tag else "")
    return Build(directory.name, objects, files)


def split_image(image: str) -> tuple[str, str]:
    name, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    return name, tag


# --- reading the built objects -----------------------------------------------------------------


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    if obj.get("kind") == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    if obj.get("kind") in WORKLOAD_KINDS:
        return obj["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return None


def containers(obj: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(pod spec, container) for every container and init container of a workload."""
    spec = pod_spec(obj)
    if spec is not None:
        for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
            yield spec, container


def wirewatch_workloads(build: Build) -> list[dict[str, Any]]:
    return [
        obj
        for obj in build.objects
        if obj["kind"] in WORKLOAD_KINDS
        and (obj["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == "wirewatch"
    ]


def component(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def services(build: Build) -> dict[str, dict[str, Any]]:
    """The Deployment of each wirewatch service, by service name."""
    return {component(obj): obj for obj in wirewatch_workloads(build) if obj["kind"] == "Deployment"}


def label(obj: dict[str, Any]) -> str:
    return f"{build_label(obj)}{obj['kind']}/{obj['metadata']['name']}"


def build_label(obj: dict[str, Any]) -> str:
    namespace = obj["metadata"].get("namespace")
    return f"{namespace}/" if namespace else ""


def environment(build: Build, container: dict[str, Any]) -> dict[str, str | None]:
    """The container's variables as the kubelet sets them (``env`` wins over ``envFrom``);
    None for a value taken from a Secret or a field."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            config = build.get("ConfigMap", source["configMapRef"]["name"]) or {}
            env.update({key: str(value) for key, value in (config.get("data") or {}).items()})
    for item in container.get("env") or []:
        env[item["name"]] = str(item["value"]) if "value" in item else None
    return env


def settings_env(build: Build, container: dict[str, Any]) -> dict[str, str | None]:
    return {
        key: value for key, value in environment(build, container).items() if key.startswith("WIREWATCH_")
    }


def web_port(build: Build, container: dict[str, Any]) -> int:
    return int(environment(build, container).get("WIREWATCH_WEB_PORT") or WEB_PORT_DEFAULT)


def annotation_types(annotation: Any) -> Iterator[Any]:
    yield annotation
    for arg in typing.get_args(annotation):
        yield from annotation_types(arg)


def field_has_type(name: str, kind: type) -> bool:
    info = Settings.model_fields[name]
    return any(t is kind for t in annotation_types(info.annotation))


#: Settings that name a file (the process reads it), from the Settings annotations and names.
PATH_SETTINGS: frozenset[str] = frozenset(
    f"WIREWATCH_{name.upper()}"
    for name in Settings.model_fields
    if name != "data_dir" and (field_has_type(name, Path) or name.endswith(("_file", "_cafile", "_ca_certs")))
)


def is_path_setting(name: str) -> bool:
    return name in PATH_SETTINGS or name.endswith(("_FILE", "_CAFILE", "_CA_CERTS"))


#: Settings holding a secret value: never written literally into a manifest.
SECRET_SETTINGS: frozenset[str] = frozenset(
    f"WIREWATCH_{name.upper()}" for name in Settings.model_fields if field_has_type(name, SecretStr)
) | frozenset(n for n in SETTINGS_ENV_NAMES if re.search(r"PASSWORD$|SECRET$|API_KEY$|TOKEN$", n))


def operator_secrets(build: Build) -> dict[str, frozenset[str]]:
    """Secrets the operators of the build's custom resources create, with their keys."""
    made: dict[str, frozenset[str]] = {}
    for es in build.of_kind("Elasticsearch"):
        name = es["metadata"]["name"]
        made[f"{name}-es-elastic-user"] = frozenset({"elastic"})
        made[f"{name}-es-http-certs-public"] = frozenset({"tls.crt"})  # ca.crt only with ECK's own CA
    for kibana in build.of_kind("Kibana"):
        made[f"{kibana['metadata']['name']}-kb-http-certs-public"] = frozenset({"tls.crt"})
    for kafka in build.of_kind("Kafka"):
        made[f"{kafka['metadata']['name']}-cluster-ca-cert"] = frozenset({"ca.crt", "ca.p12", "ca.password"})
    for user in build.of_kind("KafkaUser"):
        if (user["spec"].get("authentication") or {}).get("type") == "scram-sha-512":
            made[user["metadata"]["name"]] = frozenset({"password", "sasl.jaas.config"})
    return made


def secret_keys(build: Build, name: str) -> frozenset[str] | None:
    """The keys of a Secret the pods may use (None: no such Secret)."""
    defined = build.get("Secret", name)
    if defined is not None:
        return frozenset({*(defined.get("data") or {}), *(defined.get("stringData") or {})})
    return {**DOCUMENTED_SECRETS, **operator_secrets(build)}.get(name)


def config_keys(build: Build, name: str) -> frozenset[str] | None:
    defined = build.get("ConfigMap", name)
    return None if defined is None else frozenset(defined.get("data") or {})


@dataclass(frozen=True)
class FileSource:
    volume: dict[str, Any]
    kind: str  # "secret", "configMap", "emptyDir", ...
    name: str | None  # the Secret's or ConfigMap's name
    key: str | None  # the key the file is made of
    sub_path: bool
    read_only: bool


def file_source(spec: dict[str, Any], container: dict[str, Any], path: str) -> FileSource | None:
    """Where ``path`` in this container comes from (the deepest mount holding it)."""
    target = PurePosixPath(path)
    mounts = [m for m in container.get("volumeMounts") or [] if target.is_relative_to(m["mountPath"])]
    if not mounts:
        return None
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    volume = next((v for v in spec.get("volumes") or [] if v["name"] == mount["name"]), None)
    if volume is None:
        return None
    kind = next(k for k in volume if k != "name")
    source = volume[kind] or {}
    relative = str(target.relative_to(mount["mountPath"]))
    name = source.get("secretName") or source.get("name")
    key: str | None = relative
    items = source.get("items")
    if items is not None:
        key = next((item["key"] for item in items if item["path"] == relative), None)
    elif mount.get("subPath"):
        key = mount["subPath"]
    return FileSource(volume, kind, name, key, bool(mount.get("subPath")), bool(mount.get("readOnly")))


def cli_arguments(args: list[str]) -> tuple[click.Command, dict[str, Any]]:
    """The CLI command ``args`` name and its raw option values (no file is opened)."""
    command: click.Command = cli_main
    rest = list(args)
    path = []
    while isinstance(command, click.Group):
        if not rest:
            raise click.UsageError(f"{' '.join(path) or 'wirewatch'} needs a subcommand")
        token = rest.pop(0)
        sub = command.commands.get(token)
        if sub is None:
            raise click.UsageError(f"no command {token!r} in {' '.join(['wirewatch', *path])}")
        command, path = sub, [*path, token]
    context = click.Context(command, info_name=" ".join(path))
    values, extra, _ = command.make_parser(context).parse_args(args=rest)
    if extra:
        raise click.UsageError(f"unexpected arguments {extra}")
    for param in command.params:
        if param.required and values.get(param.name) is None:
            raise click.UsageError(f"{' '.join(path)}: {param.name} is required")
        value = values.get(param.name)
        if isinstance(param.type, click.Choice) and value is not None and value not in param.type.choices:
            raise click.UsageError(f"{' '.join(path)}: {value!r} not in {param.type.choices}")
    return command, values


QUANTITY = re.compile(r"^(?P<number>[0-9.]+)(?P<unit>m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
UNITS = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
UNITS["Ti"] = 2**40


def quantity(value: Any) -> float:
    match = QUANTITY.match(str(value))
    if not match:
        raise ValueError(f"not a quantity: {value!r}")
    return float(match["number"]) * UNITS[match["unit"]]


# --- the checks (each returns its problems) ----------------------------------------------------


def check_identity(build: Build) -> list[str]:
    problems = []
    seen: set[tuple[str, str, str]] = set()
    for obj in build.objects:
        meta = obj.get("metadata") or {}
        if not (obj.get("apiVersion") and obj.get("kind") and meta.get("name")):
            problems.append(f"object without apiVersion, kind or metadata.name: {str(obj)[:120]}")
            continue
        key = (obj["kind"], meta.get("namespace", ""), meta["name"])
        if key in seen:
            problems.append(f"two objects {label(obj)}")
        seen.add(key)
    return problems


def check_settings_names(build: Build) -> list[str]:
    problems = []
    for obj in wirewatch_workloads(build):
        for _, container in containers(obj):
            for name in environment(build, container):
                if name not in SETTINGS_ENV_NAMES:
                    problems.append(f"{label(obj)}: {name} is not a Settings field")
            for source in container.get("envFrom") or []:
                ref = source.get("configMapRef") or source.get("secretRef") or {}
                if source.get("prefix"):
                    problems.append(f"{label(obj)}: envFrom prefix {source['prefix']!r}")
                config = build.get("ConfigMap", ref.get("name", ""))
                for key, value in ((config or {}).get("data") or {}).items():
                    if not isinstance(value, str):
                        problems.append(f"ConfigMap {ref['name']}: {key} must be a string, not {value!r}")
    return problems


def check_references(build: Build) -> list[str]:
    problems = []
    for obj in build.objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        where = label(obj)
        account = spec.get("serviceAccountName")
        if account and build.get("ServiceAccount", account) is None:
            problems.append(f"{where}: ServiceAccount {account} is not in the build")
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        mounted = set()
        for _, container in containers(obj):
            for source in container.get("envFrom") or []:
                if "configMapRef" in source and config_keys(build, source["configMapRef"]["name"]) is None:
                    problems.append(f"{where}: envFrom ConfigMap {source['configMapRef']['name']} missing")
                if "secretRef" in source and secret_keys(build, source["secretRef"]["name"]) is None:
                    problems.append(f"{where}: envFrom Secret {source['secretRef']['name']} missing")
            for item in container.get("env") or []:
                ref = item.get("valueFrom") or {}
                for kind, lookup in (("configMapKeyRef", config_keys), ("secretKeyRef", secret_keys)):
                    if kind in ref:
                        keys = lookup(build, ref[kind]["name"])
                        if keys is None or ref[kind]["key"] not in keys:
                            problems.append(f"{where}: {item['name']}: {kind} {ref[kind]} does not exist")
            for mount in container.get("volumeMounts") or []:
                mounted.add(mount["name"])
                if mount["name"] not in volumes:
                    problems.append(f"{where}: volumeMount {mount['name']} has no volume")
        for name, volume in volumes.items():
            if name not in mounted:
                problems.append(f"{where}: volume {name} is never mounted")
            sources = [("secret", volume["secret"])] if "secret" in volume else []
            sources += [("configMap", volume["configMap"])] if "configMap" in volume else []
            for projected in (volume.get("projected") or {}).get("sources") or []:
                sources += [(kind, projected[kind]) for kind in ("secret", "configMap") if kind in projected]
            for kind, source in sources:
                ref_name = source.get("secretName") or source.get("name")
                keys = (secret_keys if kind == "secret" else config_keys)(build, ref_name)
                if keys is None:
                    if not source.get("optional"):
                        problems.append(f"{where}: volume {name}: {kind} {ref_name} is not in the build")
                    continue
                for item in source.get("items") or []:
                    if item["key"] not in keys:
                        problems.append(f"{where}: volume {name}: {kind} {ref_name} has no key {item['key']}")
    return problems


def check_files(build: Build) -> list[str]:
    """Every file a setting (or --ca-certs) names is a key of a volume mounted there."""
    problems = []
    for obj in wirewatch_workloads(build):
        for spec, container in containers(obj):
            paths = [(n, v) for n, v in settings_env(build, container).items() if is_path_setting(n) and v]
            args = [str(a) for a in container.get("args") or []]
            paths += [("--ca-certs", args[i + 1]) for i, a in enumerate(args[:-1]) if a == "--ca-certs"]
            for name, path in paths:
                source = file_source(spec, container, path)
                if source is None:
                    problems.append(f"{label(obj)}: {name}={path} is on no mounted volume")
                elif source.kind in {"secret", "configMap"}:
                    keys = (secret_keys if source.kind == "secret" else config_keys)(build, source.name or "")
                    if source.key is None or (keys is not None and source.key not in keys):
                        problems.append(
                            f"{label(obj)}: {name}={path}: no such file in {source.kind} {source.name}"
                        )
                    if not source.read_only:
                        problems.append(f"{label(obj)}: {name}: mount it readOnly")
                else:
                    problems.append(f"{label(obj)}: {name}={path} is on a {source.kind} volume, not a secret")
    return problems


@contextmanager
def wirewatch_environment(values: dict[str, str]) -> Iterator[None]:
    """os.environ with exactly these WIREWATCH_* variables (restored afterwards)."""
    saved = {key: value for key, value in os.environ.items() if key.startswith("WIREWATCH_")}
    for key in saved:
        del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        for key in values:
            os.environ.pop(key, None)
        os.environ.update(saved)


def check_settings_values(build: Build) -> list[str]:
    """Each container's variables make valid Settings, read from the environment as the process
    does, every file it would read replaced by a stand-in (and the data dir by a scratch one)."""
    problems = []
    with tempfile.TemporaryDirectory() as scratch:
        for obj in wirewatch_workloads(build):
            for _, container in containers(obj):
                values = {}
                for key, value in settings_env(build, container).items():
                    if value is None:
                        continue
                    if is_path_setting(key):
                        value = str(Path(scratch) / key.lower())
                        Path(value).write_text("stand-in\n", encoding="utf-8")
                    elif key == "WIREWATCH_DATA_DIR":
                        value = str(Path(scratch) / "data")
                    values[key] = value
                try:
                    with wirewatch_environment(values):
                        make_settings()
                except (ValidationError, ValueError) as exc:
                    problems.append(f"{label(obj)}: invalid settings: {exc}")
    return problems


PROBES = (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"))


def check_probes_and_port(build: Build) -> list[str]:
    problems = []
    for name, obj in services(build).items():
        spec = pod_spec(obj) or {}
        for container in spec.get("containers") or []:
            env = environment(build, container)
            port = web_port(build, container)
            if env.get("WIREWATCH_WEB_HOST") != "0.0.0.0":
                problems.append(f"{name}: WIREWATCH_WEB_HOST must be 0.0.0.0 for probes from the kubelet")
            ports = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
            if port not in ports.values():
                problems.append(f"{name}: the web port {port} is not a container port")
            for probe, path in PROBES:
                get = (container.get(probe) or {}).get("httpGet") or {}
                target = ports.get(get.get("port"), get.get("port"))
                if get.get("path") != path or target != port:
                    problems.append(f"{name}: {probe} must GET {path} on port {port}, not {get}")
    return problems


def matches(selector: dict[str, Any], labels: dict[str, Any]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def check_metrics_services_and_budgets(build: Build) -> list[str]:
    problems = []
    for name, obj in services(build).items():
        template = obj["spec"]["template"]
        labels = template["metadata"].get("labels") or {}
        container = template["spec"]["containers"][0]
        port = web_port(build, container)
        if not matches(obj["spec"]["selector"].get("matchLabels") or {}, labels):
            problems.append(f"{name}: the Deployment's selector does not match its pods")
        notes = template["metadata"].get("annotations") or {}
        wanted = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics",
        }
        if any(notes.get(key) != value for key, value in wanted.items()):
            problems.append(f"{name}: pod annotations must be {wanted}, not {notes}")
        mine = [s for s in build.of_kind("Service") if matches(s["spec"].get("selector") or {}, labels)]
        if len(mine) != 1:
            problems.append(f"{name}: {len(mine)} Services select its pods (want 1)")
        for service in mine:
            named = {p.get("name"): p["containerPort"] for p in container.get("ports") or []}
            targets = [named.get(p.get("targetPort"), p.get("targetPort")) for p in service["spec"]["ports"]]
            if port not in targets:
                problems.append(f"{name}: Service {service['metadata']['name']} does not reach port {port}")
        budgets = [
            b
            for b in build.of_kind("PodDisruptionBudget")
            if matches(b["spec"]["selector"].get("matchLabels") or {}, labels)
        ]
        if len(budgets) != 1 or budgets[0]["spec"].get("maxUnavailable") != 1:
            problems.append(f"{name}: want one PodDisruptionBudget with maxUnavailable: 1")
    return problems


def check_image_and_commands(build: Build) -> list[str]:
    problems = []
    images = set()
    run_services = set()
    for obj in wirewatch_workloads(build):
        for _, container in containers(obj):
            images.add(container.get("image"))
            where = label(obj)
            if container.get("command") != ["wirewatch"]:
                problems.append(f"{where}: command must be ['wirewatch'] (the image's console script)")
            args = [str(a) for a in container.get("args") or []]
            try:
                command, values = cli_arguments(args)
            except click.ClickException as exc:
                problems.append(
                    f"{where}: `wirewatch {' '.join(args)}` is not a CLI command: {exc.format_message()}"
                )
                continue
            if obj["kind"] == "Deployment":
                if command.name != "run" or values.get("service") != component(obj):
                    problems.append(f"{where}: a service Deployment runs `wirewatch run {component(obj)}`")
                run_services.add(values.get("service"))
    if run_services != set(SERVICES):
        problems.append(f"service Deployments run {sorted(map(str, run_services))}, not {sorted(SERVICES)}")
    if len(images) != 1:
        problems.append(f"every wirewatch container must use the one image, not {sorted(map(str, images))}")
    for image in images:
        _, tag = split_image(str(image))
        if not tag or tag == "latest":
            problems.append(f"image {image} needs a fixed tag")
    return problems


def check_no_literal_secrets(build: Build) -> list[str]:
    problems = []
    for secret in build.of_kind("Secret"):
        if secret.get("data") or secret.get("stringData"):
            problems.append(f"Secret {secret['metadata']['name']} carries values: create it out of band")
    for config in build.of_kind("ConfigMap"):
        for key in config.get("data") or {}:
            if key in SECRET_SETTINGS:
                problems.append(f"ConfigMap {config['metadata']['name']} sets the secret {key}")
    for obj in build.objects:
        for _, container in containers(obj):
            for item in container.get("env") or []:
                secretish = item["name"] in SECRET_SETTINGS or re.search(
                    r"PASSWORD$|SECRET$|API_KEY$|TOKEN$", item["name"]
                )
                if secretish and "value" in item:
                    problems.append(f"{label(obj)}: {item['name']} is written literally (use a *_FILE)")
    return problems


def dockerfile_uid() -> int:
    match = re.search(r"--uid (\d+)", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    assert match, "the Dockerfile creates no user with --uid"
    return int(match[1])


def check_security(build: Build) -> list[str]:
    problems = []
    uid = dockerfile_uid()
    for obj in wirewatch_workloads(build):
        spec = pod_spec(obj) or {}
        where = label(obj)
        pod = spec.get("securityContext") or {}
        if pod.get("runAsNonRoot") is not True or pod.get("runAsUser") != uid:
            problems.append(f"{where}: run as non-root, uid {uid} (the Dockerfile's user)")
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{where}: wirewatch needs no Kubernetes API token")
        for _, container in containers(obj):
            context = container.get("securityContext") or {}
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem must be true")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation must be false")
            if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{where}: drop ALL capabilities")
            writable = {"/tmp"}
            if obj["kind"] == "Deployment":
                writable.add(environment(build, container).get("WIREWATCH_DATA_DIR") or ".wirewatch")
            volumes = {v["name"]: v for v in spec.get("volumes") or []}
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts") or []}
            for path in writable:
                mount = mounts.get(path) or {}
                volume = volumes.get(mount.get("name", "")) or {}
                if mount.get("readOnly") or mount.get("subPath") or "emptyDir" not in volume:
                    problems.append(f"{where}: {path} must be a writable emptyDir mount")
                elif not (volume["emptyDir"] or {}).get("sizeLimit"):
                    problems.append(f"{where}: the emptyDir at {path} needs a sizeLimit")
    return problems


def check_resources_and_lifecycle(build: Build) -> list[str]:
    problems = []
    for obj in wirewatch_workloads(build):
        spec = pod_spec(obj) or {}
        where = label(obj)
        for _, container in containers(obj):
            resources = container.get("resources") or {}
            for resource in ("cpu", "memory"):
                request = (resources.get("requests") or {}).get(resource)
                limit = (resources.get("limits") or {}).get(resource)
                if request is None or limit is None:
                    problems.append(f"{where}: {resource} request and limit are required")
                elif quantity(request) > quantity(limit):
                    problems.append(f"{where}: {resource} request {request} above its limit {limit}")
        if obj["kind"] == "Deployment" and (spec.get("terminationGracePeriodSeconds") or 30) < 30:
            problems.append(f"{where}: give Faust at least 30 s to commit on SIGTERM")
        if obj["kind"] == "Job":
            if spec.get("restartPolicy") not in {"OnFailure", "Never"}:
                problems.append(f"{where}: a Job's pods restart OnFailure or Never")
            if obj["spec"].get("backoffLimit") is None or obj["spec"].get("ttlSecondsAfterFinished") is None:
                problems.append(f"{where}: set backoffLimit and ttlSecondsAfterFinished (so it runs again)")
    return problems


def check_scaling(build: Build) -> list[str]:
    problems = []
    for name, obj in services(build).items():
        env = environment(build, obj["spec"]["template"]["spec"]["containers"][0])
        partitions = int(
            env.get("WIREWATCH_TOPIC_PARTITIONS") or Settings.model_fields["topic_partitions"].default
        )
        replicas = obj["spec"].get("replicas", 1)
        if replicas > partitions:
            problems.append(f"{name}: {replicas} replicas but {partitions} partitions (extra ones idle)")
        for hpa in build.of_kind("HorizontalPodAutoscaler"):
            aimed = hpa["spec"]["scaleTargetRef"]["name"] == obj["metadata"]["name"]
            if aimed and hpa["spec"]["maxReplicas"] > partitions:
                problems.append(f"{name}: HPA maxReplicas above {partitions} partitions")
    return problems


CHECKS: dict[str, Callable[[Build], list[str]]] = {
    "identity": check_identity,
    "settings names": check_settings_names,
    "settings values": check_settings_values,
    "references": check_references,
    "files": check_files,
    "probes": check_probes_and_port,
    "metrics": check_metrics_services_and_budgets,
    "image and commands": check_image_and_commands,
    "secrets": check_no_literal_secrets,
    "security": check_security,
    "resources": check_resources_and_lifecycle,
    "scaling": check_scaling,
}


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=sorted(BUILDS))
def build(request: pytest.FixtureRequest) -> Build:
    return kustomize(BUILDS[request.param])


@pytest.fixture(scope="module")
def overlay() -> Build:
    return kustomize(OVERLAYS / "strimzi-eck")


def single(build: Build, kind: str) -> dict[str, Any]:
    found = build.of_kind(kind)
    assert len(found) == 1, f"want one {kind}, found {len(found)}"
    return found[0]


def only_container(obj: dict[str, Any]) -> dict[str, Any]:
    spec = pod_spec(obj) or {}
    assert len(spec["containers"]) == 1 and not spec.get("initContainers")
    return spec["containers"][0]  # type: ignore[no-any-return]


# --- the manifests ------------------------------------------------------------------------------


def test_there_is_a_base_and_the_strimzi_eck_overlay() -> None:
    assert set(BUILDS) >= {"base", "strimzi-eck"}


def test_every_yaml_file_parses_and_is_used() -> None:
    used: set[Path] = set()
    for directory in BUILDS.values():
        used |= kustomize(directory).files
    for path in sorted(K8S.rglob("*.yaml")):
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        assert docs, f"{path} is empty"
        assert path.resolve() in used, f"{path.relative_to(ROOT)} is used by no kustomization"


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_check(build: Build, check: str) -> None:
    problems = CHECKS[check](build)
    assert not problems, f"{build.name}: " + "\n".join(problems)


def test_the_build_has_every_part(build: Build) -> None:
    assert set(services(build)) == set(SERVICES)
    jobs = {component(obj): only_container(obj) for obj in wirewatch_workloads(build) if obj["kind"] == "Job"}
    assert set(jobs) == {"setup", "kibana-setup"}
    assert jobs["setup"]["args"] == ["setup"]
    command, values = cli_arguments(jobs["kibana-setup"]["args"])
    assert command.name == "import" and str(values["url"]).startswith(("http://", "https://"))
    assert single(build, "ServiceAccount")["automountServiceAccountToken"] is False


def test_table_stores_and_data_dir(build: Build) -> None:
    """rocksdb:// keeps the Faust tables in the pod's emptyDir (see deploy/k8s/README.md)."""
    for name, obj in services(build).items():
        env = environment(build, only_container(obj))
        assert env.get("WIREWATCH_TABLE_STORE") in {"rocksdb://", "memory://"}, name
        assert str(env.get("WIREWATCH_DATA_DIR", "")).startswith("/"), f"{name}: an absolute data dir"


def test_feeds_file_is_a_valid_feeds_list_mounted_as_a_directory(build: Build, tmp_path: Path) -> None:
    fetcher = services(build)["fetcher"]
    spec = pod_spec(fetcher) or {}
    container = only_container(fetcher)
    path = environment(build, container)["WIREWATCH_FEEDS_FILE"]
    assert path
    source = file_source(spec, container, path)
    assert source and source.kind == "configMap" and source.name and source.key
    assert not source.sub_path, "a subPath mount never sees ConfigMap updates"
    config = build.get("ConfigMap", source.name)
    assert config is not None
    copy_ = tmp_path / "feeds.yaml"
    copy_.write_text(config["data"][source.key], encoding="utf-8")
    feeds = load_feeds(copy_)
    assert feeds and all(feed.url.startswith("https://") for feed in feeds)
    for other in ("enricher", "indexer", "alerts"):
        assert "WIREWATCH_FEEDS_FILE" not in environment(build, only_container(services(build)[other]))


def test_only_the_services_that_use_elasticsearch_get_its_password(build: Build) -> None:
    users = {"indexer", "alerts", "setup", "kibana-setup"}
    for obj in wirewatch_workloads(build):
        env = environment(build, only_container(obj))
        assert ("WIREWATCH_ES_PASSWORD_FILE" in env) == (component(obj) in users), component(obj)


def test_readme_documents_the_overlays_and_the_hand_made_secrets() -> None:
    text = README.read_text(encoding="utf-8")
    for name in BUILDS:
        if name != "base":
            assert f"kubectl apply -k deploy/k8s/overlays/{name}" in text
    for secret in DOCUMENTED_SECRETS:
        assert secret in text, f"deploy/k8s/README.md must say how to create the Secret {secret}"
    for api in ("kafka.strimzi.io/v1beta2", "elasticsearch.k8s.elastic.co/v1", "kibana.k8s.elastic.co/v1"):
        assert api in text


# --- the strimzi-eck overlay ----------------------------------------------------------------


def effective(overlay: Build, service: str) -> dict[str, str | None]:
    return environment(overlay, only_container(services(overlay)[service]))


def secret_behind(build: Build, obj: dict[str, Any], path: str) -> tuple[str | None, str | None]:
    source = file_source(pod_spec(obj) or {}, only_container(obj), path)
    assert source is not None and source.kind == "secret", f"{label(obj)}: {path} is not from a Secret"
    return source.name, source.key


def test_strimzi_kafka_in_kraft_mode(overlay: Build) -> None:
    kafka = single(overlay, "Kafka")
    assert kafka["apiVersion"] == "kafka.strimzi.io/v1beta2"
    notes = kafka["metadata"].get("annotations") or {}
    assert notes.get("strimzi.io/kraft") == "enabled" and notes.get("strimzi.io/node-pools") == "enabled"
    assert "zookeeper" not in kafka["spec"]
    pools = overlay.of_kind("KafkaNodePool")
    assert pools and all(
        p["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"] for p in pools
    )
    roles = {role for pool in pools for role in pool["spec"]["roles"]}
    assert roles == {"controller", "broker"}
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    config = kafka["spec"]["kafka"]["config"]
    assert config["auto.create.topics.enable"] is False, "wirewatch creates its topics explicitly"
    for service in SERVICES:
        factor = int(effective(overlay, service)["WIREWATCH_KAFKA_REPLICATION_FACTOR"] or 1)
        assert factor <= brokers and config["min.insync.replicas"] < factor
    assert not overlay.of_kind("KafkaTopic"), "topics come from `wirewatch setup` (see the README)"
    assert "userOperator" in kafka["spec"]["entityOperator"]


def test_services_reach_kafka_over_sasl_ssl_as_the_kafka_user(overlay: Build) -> None:
    kafka = single(overlay, "Kafka")
    user = single(overlay, "KafkaUser")
    cluster = kafka["metadata"]["name"]
    assert user["metadata"]["labels"]["strimzi.io/cluster"] == cluster
    listeners = [
        item
        for item in kafka["spec"]["kafka"]["listeners"]
        if item.get("tls") and (item.get("authentication") or {}).get("type") == "scram-sha-512"
    ]
    assert len(listeners) == 1 and user["spec"]["authentication"]["type"] == "scram-sha-512"
    kafka_users = [obj for obj in wirewatch_workloads(overlay) if component(obj) != "kibana-setup"]
    assert {component(obj) for obj in kafka_users} == {*SERVICES, "setup"}
    for obj in kafka_users:
        env = environment(overlay, only_container(obj))
        where = label(obj)
        assert env["WIREWATCH_KAFKA_BOOTSTRAP"] == f"{cluster}-kafka-bootstrap:{listeners[0]['port']}", where
        assert env["WIREWATCH_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", where
        assert env["WIREWATCH_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", where
        assert env["WIREWATCH_KAFKA_SASL_USERNAME"] == user["metadata"]["name"], where
        password = env["WIREWATCH_KAFKA_SASL_PASSWORD_FILE"]
        cafile = env["WIREWATCH_KAFKA_SSL_CAFILE"]
        assert password and cafile
        assert secret_behind(overlay, obj, password) == (user["metadata"]["name"], "password"), where
        assert secret_behind(overlay, obj, cafile) == (f"{cluster}-cluster-ca-cert", "ca.crt"), where


def test_kafka_user_acls_cover_every_topic_and_group(overlay: Build) -> None:
    acls = single(overlay, "KafkaUser")["spec"]["authorization"]["acls"]

    def allowed(kind: str, name: str, operations: set[str]) -> bool:
        for acl in acls:
            resource = acl["resource"]
            if resource["type"] != kind:
                continue
            pattern = resource.get("patternType", "literal")
            hit = name.startswith(resource["name"]) if pattern == "prefix" else name == resource["name"]
            granted = set(acl["operations"])
            if hit and ("All" in granted or operations <= granted):
                return True
        return False

    env = effective(overlay, "indexer")
    topics = [
        env.get(f"WIREWATCH_{name.upper()}") or str(Settings.model_fields[name].default)
        for name in Settings.model_fields
        if name.startswith("topic_") and name != "topic_partitions"
    ]
    # Faust's app ids (consumer groups) and the prefix of its changelog and internal topics.
    apps = [f"wirewatch-{service}" for service in SERVICES]
    for topic in [*topics, *(f"{app}-copies-changelog" for app in apps)]:
        assert allowed("topic", topic, {"Create", "Describe", "Read", "Write"}), topic
    for app in apps:
        assert allowed("group", app, {"Read", "Describe"}), app


def test_services_reach_eck_elasticsearch_and_kibana_over_https(overlay: Build) -> None:
    es = single(overlay, "Elasticsearch")
    kibana = single(overlay, "Kibana")
    assert es["apiVersion"] == "elasticsearch.k8s.elastic.co/v1"
    assert kibana["apiVersion"] == "kibana.k8s.elastic.co/v1"
    assert kibana["spec"]["elasticsearchRef"]["name"] == es["metadata"]["name"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    compose_version = split_image(compose["services"]["elasticsearch"]["image"])[1]
    assert es["spec"]["version"] == kibana["spec"]["version"] == compose_version
    name = es["metadata"]["name"]
    for obj in wirewatch_workloads(overlay):
        env = environment(overlay, only_container(obj))
        assert env["WIREWATCH_ES_URL"] == f"https://{name}-es-http:9200"
        if "WIREWATCH_ES_PASSWORD_FILE" not in env:
            continue
        assert env["WIREWATCH_ES_USERNAME"] == "elastic"
        assert env["WIREWATCH_ES_PASSWORD_FILE"] and env["WIREWATCH_ES_CA_CERTS"]
        assert secret_behind(overlay, obj, env["WIREWATCH_ES_PASSWORD_FILE"]) == (
            f"{name}-es-elastic-user",
            "elastic",
        )
        assert secret_behind(overlay, obj, env["WIREWATCH_ES_CA_CERTS"]) == (
            f"{name}-es-http-certs-public",
            "tls.crt",
        )
    job = next(obj for obj in wirewatch_workloads(overlay) if component(obj) == "kibana-setup")
    _, values = cli_arguments(only_container(job)["args"])
    assert values["url"] == f"https://{kibana['metadata']['name']}-kb-http:5601"
    assert secret_behind(overlay, job, values["ca_certs"]) == (
        f"{kibana['metadata']['name']}-kb-http-certs-public",
        "tls.crt",
    )


def test_overlay_namespace(overlay: Build) -> None:
    namespaces = {obj["metadata"].get("namespace") for obj in overlay.objects}
    assert namespaces == {"wirewatch"}


# --- the checks can fail --------------------------------------------------------------------


def mutate(build: Build, change: Callable[[Build], None]) -> Build:
    broken = Build(build.name, copy.deepcopy(build.objects), set(build.files))
    change(broken)
    return broken


def fetcher_container(build: Build) -> dict[str, Any]:
    return only_container(services(build)["fetcher"])


def indexer_spec(build: Build) -> dict[str, Any]:
    return pod_spec(services(build)["indexer"]) or {}


def sasl_without_password(container: dict[str, Any]) -> None:
    env = [item for item in container["env"] if not item["name"].startswith("WIREWATCH_KAFKA_SASL_PASSWORD")]
    container["env"] = [*env, {"name": "WIREWATCH_KAFKA_SECURITY_PROTOCOL", "value": "SASL_SSL"}]


BREAKAGES: dict[str, tuple[str, Callable[[Build], None]]] = {
    "unknown setting": (
        "settings names",
        lambda b: fetcher_container(b)["env"].append({"name": "WIREWATCH_FEED_FILE", "value": "/x"}),
    ),
    "missing secret": (
        "references",
        lambda b: next(v for v in indexer_spec(b)["volumes"] if "secret" in v)["secret"].update(
            secretName="nobody-made-this"
        ),
    ),
    "missing ConfigMap": (
        "references",
        lambda b: fetcher_container(b)["envFrom"][0]["configMapRef"].update(name="wirewatch-setings"),
    ),
    "file off its mount": (
        "files",
        lambda b: only_container(services(b)["indexer"])["env"].append(
            {"name": "WIREWATCH_ES_CA_CERTS", "value": "/etc/ssl/nowhere/ca.crt"}
        ),
    ),
    "wrong probe path": (
        "probes",
        lambda b: fetcher_container(b)["livenessProbe"]["httpGet"].update(path="/health"),
    ),
    "probe on another port": (
        "probes",
        lambda b: fetcher_container(b)["readinessProbe"]["httpGet"].update(port=8080),
    ),
    "no scrape annotation": (
        "metrics",
        lambda b: services(b)["alerts"]["spec"]["template"]["metadata"].pop("annotations"),
    ),
    "invalid value": (
        "settings values",
        lambda b: fetcher_container(b)["env"].append({"name": "WIREWATCH_LOG_LEVEL", "value": "verbose"}),
    ),
    "SASL without its password": ("settings values", lambda b: sasl_without_password(fetcher_container(b))),
    "two images": ("image and commands", lambda b: fetcher_container(b).update(image="wirewatch:other")),
    "unknown service": ("image and commands", lambda b: fetcher_container(b).update(args=["run", "fetchr"])),
    "unknown option": (
        "image and commands",
        lambda b: only_container(
            next(o for o in wirewatch_workloads(b) if component(o) == "kibana-setup")
        ).update(args=["kibana", "import", "--kibana-url", "http://kibana:5601"]),
    ),
    "literal password": (
        "secrets",
        lambda b: fetcher_container(b)["env"].append({"name": "WIREWATCH_ES_PASSWORD", "value": "hunter2"}),
    ),
    "writable root": (
        "security",
        lambda b: fetcher_container(b)["securityContext"].update(readOnlyRootFilesystem=False),
    ),
    "no limits": ("resources", lambda b: fetcher_container(b)["resources"].pop("limits")),
    "more replicas than partitions": (
        "scaling",
        lambda b: services(b)["enricher"]["spec"].update(replicas=99),
    ),
    "duplicate name": ("identity", lambda b: b.objects.append(copy.deepcopy(services(b)["fetcher"]))),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_checks_see_broken_manifests(breakage: str) -> None:
    check, change = BREAKAGES[breakage]
    for directory in BUILDS.values():
        build = kustomize(directory)
        assert not CHECKS[check](build)
        assert CHECKS[check](mutate(build, change)), f"{check} misses: {breakage} ({build.name})"


def test_the_resolver_refuses_what_it_cannot_build(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n", encoding="utf-8")
    with pytest.raises(KustomizeError, match="does not exist"):
        kustomize(tmp_path)
    (tmp_path / "kustomization.yaml").write_text("namePrefix: x-\n", encoding="utf-8")
    with pytest.raises(KustomizeError, match="does not model"):
        kustomize(tmp_path)
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n", encoding="utf-8"
    )
    (tmp_path / "p.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n", encoding="utf-8"
    )
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [cm.yaml]\npatches: [{path: p.yaml}]\n", encoding="utf-8"
    )
    with pytest.raises(KustomizeError, match="selects nothing"):
        kustomize(tmp_path)


# --- the real kustomize, when installed -------------------------------------------------------


def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def normalised(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: normalised(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [normalised(v) for v in value]
        if key in MERGE_KEYS and all(isinstance(v, dict) for v in items):
            return sorted(items, key=lambda v: str(v.get(MERGE_KEYS[key])))
        return items
    return value


@pytest.mark.skipif(kustomize_command() is None, reason="neither kustomize nor kubectl is installed")
@pytest.mark.parametrize("name", sorted(BUILDS))
def test_kustomize_builds_the_same_objects(name: str) -> None:
    command = kustomize_command()
    assert command is not None
    result = subprocess.run(
        [*command, str(BUILDS[name])], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    real = {label(o): normalised(o) for o in yaml.safe_load_all(result.stdout) if o}
    ours = {label(o): normalised(o) for o in kustomize(BUILDS[name]).objects}
    assert sorted(real) == sorted(ours)
    for key, obj in ours.items():
        assert real[key] == obj, key
