"""The production overlay's manifests as `kubectl apply -k deploy/k8s/overlays/production`
sends them, for the validators: what kustomize does with this overlay (the base's namespace on
every namespaced object, the overlay's images, replicas and ConfigMap patches, its own
resources), done with PyYAML so no kustomize binary is needed. The Secrets its secretGenerator
makes from git-ignored files are left out: they hold only data."""

import copy
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "k8s" / "base"
PRODUCTION = ROOT / "deploy" / "k8s" / "overlays" / "production"
CLUSTER_WIDE = {"Namespace"}


def _load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _with_image(container: dict, images: dict) -> None:
    name = container["image"].split("@")[0].split(":")[0]
    if name in images:
        image = images[name]
        reference = image.get("newName", name)
        if "digest" in image:
            container["image"] = f"{reference}@{image['digest']}"
        elif "newTag" in image:
            container["image"] = f"{reference}:{image['newTag']}"


def rendered_manifests() -> dict[str, list[dict]]:
    """{base or overlay file name: its objects as applied}."""
    base = _load(BASE / "kustomization.yaml")[0]
    overlay = _load(PRODUCTION / "kustomization.yaml")[0]
    images = {image["name"]: image for image in overlay.get("images", [])}
    replicas = {r["name"]: r["count"] for r in overlay.get("replicas", [])}
    patches = [doc for p in overlay.get("patches", []) for doc in _load(PRODUCTION / p["path"])]
    rendered = {}
    sources = [BASE / name for name in base["resources"]] + [
        PRODUCTION / name for name in overlay["resources"] if not name.startswith("..")
    ]
    for path in sources:
        objects = []
        for doc in _load(path):
            doc = copy.deepcopy(doc)
            if doc["kind"] not in CLUSTER_WIDE:
                doc["metadata"].setdefault("namespace", base["namespace"])
            if doc["kind"] in ("Deployment", "StatefulSet") and doc["metadata"]["name"] in replicas:
                doc["spec"]["replicas"] = replicas[doc["metadata"]["name"]]
            template = doc.get("spec", {}).get("template") or doc.get("spec", {}).get(
                "jobTemplate", {}
            ).get("spec", {}).get("template")
            if template:
                spec = template["spec"]
                for container in spec.get("containers", []) + spec.get("initContainers", []):
                    _with_image(container, images)
            for patch in patches:
                same = (patch["kind"], patch["metadata"]["name"])
                if same == (doc["kind"], doc["metadata"]["name"]) and "data" in patch:
                    doc["data"] = {**doc.get("data", {}), **patch["data"]}
            objects.append(doc)
        rendered[f"{path.parent.name}-{path.name}"] = objects
    return rendered
