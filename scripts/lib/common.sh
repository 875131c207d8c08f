# scripts/lib/common.sh — shared by the scripts: installing the Debian packages (python3-numpy and
# python3-h5py only for the tests' independent MMIDIDX and checkpoint readers; iproute2 for the
# two-host test's network namespaces), and the runtime
# environment for MPI as root on a small machine, the binary the benchmarks run, and building a base
# revision for the A/B scripts.
# Source it; it defines functions and exports only.

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

# Sets BIN to the megatron binary: as given (another build, for A/B runs), else this checkout's
# release build, built first.
use_megatron_binary() {
    if [[ -z "${BIN:-}" ]]; then
        swift build -c release 2>&1 | grep -E "error|Build complete" || true
        BIN=.build/release/megatron
    fi
}

# Open MPI as root, more ranks than cores, and the fast shared-memory transport.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader

# Runs a PyTorch reference script (python3 ARGS…) the way PyTorch's CPU performance guides advise:
# under jemalloc set never to hand freed pages back to the kernel. With glibc's malloc every tensor
# above its mmap threshold is unmapped when freed and faulted in afresh at the next step: in one
# run of bench_torch.py --bf16 (gpt2-124m, 4 steps) 6.3 million minor faults against 1.7 million
# under jemalloc, and 153 against 311 tokens/s. Ours plans its arenas once: no step after the
# first faults more than a few pages. TORCH_ALLOCATOR=tcmalloc runs PyTorch on gperftools' tcmalloc
# (the guides' other choice), TORCH_ALLOCATOR=glibc on glibc's malloc.
JEMALLOC=${JEMALLOC:-/usr/lib/x86_64-linux-gnu/libjemalloc.so.2}
TCMALLOC=${TCMALLOC:-/usr/lib/x86_64-linux-gnu/libtcmalloc.so.4}
torch_python() {
    local allocator=${TORCH_ALLOCATOR:-jemalloc} library package
    case "$allocator" in
        glibc) python3 "$@"; return ;;
        jemalloc) library=$JEMALLOC package=libjemalloc2 ;;
        tcmalloc) library=$TCMALLOC package=libgoogle-perftools4 ;;
        *) echo "error: TORCH_ALLOCATOR must be jemalloc, tcmalloc or glibc, not '$allocator'" >&2; return 1 ;;
    esac
    if [ ! -f "$library" ]; then
        if [ "$(id -u)" -eq 0 ]; then
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
        else
            echo "error: PyTorch's reference runs need $package: sudo apt-get install -y $package (or TORCH_ALLOCATOR=glibc)" >&2
            return 1
        fi
    fi
    if [ "$allocator" = jemalloc ]; then
        LD_PRELOAD=$library MALLOC_CONF="background_thread:true,dirty_decay_ms:-1,muzzy_decay_ms:-1" python3 "$@"
    else
        LD_PRELOAD=$library python3 "$@"
    fi
}

# Lines naming the allocator PyTorch's runs use and the PyTorch build, for the benchmark's log.
torch_allocator_note() {
    case "${TORCH_ALLOCATOR:-jemalloc}" in
        glibc) echo "== PyTorch on glibc's malloc (TORCH_ALLOCATOR=glibc)" ;;
        tcmalloc) echo "== PyTorch under tcmalloc (LD_PRELOAD=$TCMALLOC; TORCH_ALLOCATOR=tcmalloc)" ;;
        jemalloc) echo "== PyTorch under jemalloc keeping freed pages (LD_PRELOAD=$JEMALLOC; TORCH_ALLOCATOR=tcmalloc or glibc for the others)" ;;
        *) echo "== TORCH_ALLOCATOR='$TORCH_ALLOCATOR' is none of jemalloc, tcmalloc, glibc" ;;
    esac
    # Which PyTorch build ran: its rates moved by a fifth between sessions on the same kind of machine
    # (README), so the log names it.
    python3 -c "import re, torch; c = torch.__config__.show(); d = re.search(r'MKL-DNN (v[0-9.]+)', c)
print('== PyTorch', torch.__version__, '| oneDNN', d.group(1) if d else '?', '| CPU capability', torch.backends.cpu.get_cpu_capability())" \
        2>/dev/null || true
}

# Builds revision $1 of megatron in a scratch worktree at $2/base, for the A/B scripts (bench_versus,
# bench_attention, compare_behaviour); its binary is then $2/base/.build/release/megatron.
build_base_revision() {
    git worktree add --detach "$2/base" "$1" >/dev/null
    (cd "$2/base" && swift build -c release --product megatron >/dev/null)
}

# Removes the worktree build_base_revision made under $1, and $1 itself (for an EXIT trap).
remove_base_revision() {
    git worktree remove --force "$1/base" >/dev/null 2>&1 || true
    rm -rf "$1"
}
