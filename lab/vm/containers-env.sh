# Sourced (bash) before buildah/podman: points them at RedisForge's private config written by
# scripts/install-vm-tools.sh, never at /etc/containers. Usage: source lab/vm/containers-env.sh
_rf_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CONTAINERS_CONF="$_rf_root/.tools/containers/containers.conf"
export CONTAINERS_STORAGE_CONF="$_rf_root/.tools/containers/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$_rf_root/.tools/containers/registries.conf"
export BUILDAH_ISOLATION=oci
unset _rf_root
