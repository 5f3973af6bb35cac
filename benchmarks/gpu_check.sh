#!/usr/bin/env bash
# The checks of a session with a GPU, in one run:
#  1. the Kodak images encoded at -9 with --device cuda, and again with --device cpu (both timed);
#  2. each GPU archive byte-identical to the CPU one;
#  3. the GPU archives decoded on the CPU (timed) and pixel-exact against their sources;
#  4. a 2-step data-parallel training through torchrun on cuda (NCCL), in fp32 and in bf16 with
#     channels_last, on images this script makes (Kodak is never trained on).
# Prints a table; exits non-zero if any check fails.
#
#   bash benchmarks/gpu_check.sh KODAK_DIR OUT_DIR [--cpu] [--limit N]
#
# --cpu runs the same steps with the CPU in place of the GPU (gloo in place of NCCL), to check the
# script itself on a machine without one; --limit N takes the first N images only.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: bash benchmarks/gpu_check.sh KODAK_DIR OUT_DIR [--cpu] [--limit N]" >&2
    exit 2
fi
KODAK=$1
OUT=$2
shift 2
DEVICE=cuda
LIMIT=0
while [ $# -gt 0 ]; do
    case $1 in
        --cpu) DEVICE=cpu ;;
        --limit) LIMIT=$2; shift ;;
        *) echo "gpu_check.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
PY=${PYTHON:-python}

mapfile -t IMAGES < <(ls "$KODAK"/*.png | sort)
if [ "${#IMAGES[@]}" -eq 0 ]; then
    echo "gpu_check.sh: $KODAK: no .png images" >&2
    exit 2
fi
if [ "$LIMIT" -gt 0 ]; then
    IMAGES=("${IMAGES[@]:0:$LIMIT}")
fi
N=${#IMAGES[@]}
rm -rf "$OUT"/{warm,gpu,cpu,decoded,train,ddp}
mkdir -p "$OUT"/{gpu,cpu,decoded,train,ddp}
ROWS=()
FAILED=0
row() { ROWS+=("| $1 | $2 | $3 |"); }
now() { date +%s.%N; }
since() { "$PY" -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

"$PY" -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(),
      '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"

# 0. warm up (numba compiles its kernels on first use, and CUDA starts): one image through both, untimed
mkdir -p "$OUT/warm"
pixzip compress -9 -q -f --device "$DEVICE" --output-dir "$OUT/warm" "${IMAGES[0]}"
pixzip compress -9 -q -f --device cpu --output-dir "$OUT/warm" "${IMAGES[0]}"
pixzip decompress -q -f --output-dir "$OUT/warm" "$OUT/warm/$(basename "${IMAGES[0]}").pxz"

# 1. encode, on the GPU and on the CPU
t=$(now); pixzip compress -9 -q --device "$DEVICE" --output-dir "$OUT/gpu" "${IMAGES[@]}"; T_GPU=$(since "$t")
row "encode -9, --device $DEVICE ($N images)" "$T_GPU" "$(du -cb "$OUT"/gpu/*.pxz | tail -1 | cut -f1) bytes"
t=$(now); pixzip compress -9 -q --device cpu --output-dir "$OUT/cpu" "${IMAGES[@]}"; T_CPU=$(since "$t")
row "encode -9, --device cpu ($N images)" "$T_CPU" "$(du -cb "$OUT"/cpu/*.pxz | tail -1 | cut -f1) bytes"

# 2. the same bytes
SAME=0
for f in "$OUT"/gpu/*.pxz; do
    if cmp -s "$f" "$OUT/cpu/$(basename "$f")"; then SAME=$((SAME + 1)); else echo "DIFFERENT: $f" >&2; fi
done
row "archives byte-identical ($DEVICE vs cpu)" "" "$SAME/$N"
[ "$SAME" -eq "$N" ] || FAILED=1

# 3. decode the GPU's archives on the CPU, compare with the sources
t=$(now); pixzip decompress -q --output-dir "$OUT/decoded" "$OUT"/gpu/*.pxz; T_DEC=$(since "$t")
EXACT=$("$PY" - "$OUT/decoded" "${IMAGES[@]}" <<'EOF'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

decoded, sources = Path(sys.argv[1]), sys.argv[2:]
same = 0
for s in sources:
    a = np.asarray(Image.open(s))
    b = np.asarray(Image.open(decoded / Path(s).name))
    same += a.shape == b.shape and np.array_equal(a, b)
print(same)
EOF
)
row "decode on cpu ($N archives)" "$T_DEC" "pixel-exact $EXACT/$N"
[ "$EXACT" -eq "$N" ] || FAILED=1

# 4. data-parallel training through torchrun on the device (NCCL on cuda)
"$PY" - "$OUT/train" <<'EOF'
import sys

import numpy as np
from PIL import Image

rng = np.random.default_rng(0)
for i in range(8):
    ramp = np.arange(64)[None, :, None] * 2 + rng.integers(0, 120, (1, 1, 3))
    im = (ramp + rng.integers(0, 16, (64, 64, 3))).clip(0, 255).astype(np.uint8)
    Image.fromarray(im).save(f"{sys.argv[1]}/{i}.png")
EOF
BACKEND=$([ "$DEVICE" = cuda ] && echo nccl || echo gloo)
for opts in "--precision fp32" "--precision bf16 --channels-last"; do
    name=$(echo "$opts" | tr -d ' -')
    t=$(now)
    if "$PY" -m torch.distributed.run --standalone --nproc_per_node=1 -m pixzip train "$OUT/train" \
        --out "$OUT/ddp/$name.pt" --device "$DEVICE" --steps 2 --batch-size 8 --crop 32 --channels 30 \
        --layers 4 --kernel 3 --log-every 1 $opts > "$OUT/ddp/$name.out" 2>&1; then
        result="ok, bits/dim $(tail -1 "$OUT/ddp/$name.pt.log.csv" | cut -d, -f2)"
    else
        result="FAILED (see $OUT/ddp/$name.out)"; FAILED=1
    fi
    row "torchrun 1 process, $BACKEND, 2 steps, $opts" "$(since "$t")" "$result"
done

echo
echo "| check | seconds | result |"
echo "|---|---|---|"
printf '%s\n' "${ROWS[@]}"
exit $FAILED
