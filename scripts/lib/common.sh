# scripts/lib/common.sh — shared by the scripts: installing the Debian packages (python3-numpy and
# python3-h5py only for the tests' independent MMIDIDX and checkpoint readers; iproute2 for the
# two-host test's network namespaces), and the runtime
# environment for MPI as root on a small machine. Source it; it defines functions and exports only.

MEGATRON_PACKAGES=(libopenmpi-dev openmpi-bin libopenblas-dev libhdf5-dev hdf5-tools pkg-config python3-numpy python3-h5py iproute2)

# Installs whichever of MEGATRON_PACKAGES are missing (apt-get, as root).
ensure_packages() {
    local missing=()
    for p in "${MEGATRON_PACKAGES[@]}"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "==> installing ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: missing packages: ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
        return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Open MPI as root, more ranks than cores, and the fast shared-memory transport.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader
