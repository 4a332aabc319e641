"""Builds test images on disk: an OCI image layout (oci:DIR:TAG for skopeo) and a Docker
schema2 image in skopeo's dir: format, each with chosen multi-file gzip layers."""
import gzip
import io
import json
import os
import tarfile

from oci_util import (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, canon,
                      digest)


def make_layer(files):
    """files: {path: bytes}. A deterministic gzip'd tar; returns (gz bytes, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(tar_bytes)
    return gz.getvalue(), digest(tar_bytes)


def _config(diff_ids, label):
    return canon({"architecture": "amd64", "os": "linux", "config": {"Labels": {"zinc.test": label}},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}})


def _image(layer_files, label, docker):
    layers = [make_layer(f) for f in layer_files]
    config = _config([d for _, d in layers], label)
    manifest = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
                "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG, "digest": digest(config),
                           "size": len(config)},
                "layers": [{"mediaType": DOCKER_LAYER if docker else OCI_LAYER, "digest": digest(gz), "size": len(gz)}
                           for gz, _ in layers]}
    return canon(manifest), config, [gz for gz, _ in layers]


def build_oci_layout(path, tag, layer_files, label="oci"):
    """Writes an OCI image layout at path with one image tagged `tag`; returns the manifest digest."""
    manifest, config, layers = _image(layer_files, label, docker=False)
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)
    for b in [manifest, config] + layers:
        with open(os.path.join(blobs, digest(b)[7:]), "wb") as f:
            f.write(b)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    index = {"schemaVersion": 2, "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest(manifest),
                                                "size": len(manifest),
                                                "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump(index, f)
    return digest(manifest)


def build_docker_dir(path, layer_files, label="docker"):
    """Writes a Docker schema2 image in skopeo's dir: format; returns the manifest digest."""
    manifest, config, layers = _image(layer_files, label, docker=True)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "manifest.json"), "wb") as f:
        f.write(manifest)
    for b in [config] + layers:
        with open(os.path.join(path, digest(b)[7:]), "wb") as f:
            f.write(b)
    with open(os.path.join(path, "version"), "w") as f:
        f.write("Directory Transport Version: 1.1\n")
    return digest(manifest)
