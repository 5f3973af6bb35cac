"""The layout's promises: the coding path never imports torch, the package
imports nothing heavy until it is used, and the contract lives in one place."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODEC = ROOT / "pixzip" / "codec"
DATA = Path(__file__).parent / "data"


def run_fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter; its stdout."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_decoding_imports_no_torch():
    """A fresh interpreter imports the codec, decodes the golden network
    file, reads every kind of header and lists the models: torch is never
    imported."""
    out = run_fresh(f"""
import sys
import pixzip.codec
assert "torch" not in sys.modules, "import pixzip.codec imported torch"
import numpy as np
from PIL import Image
from pixzip.codec import api
from pixzip.codec.network import registry
net = registry.load_model({str(DATA / 'golden-tiny.pxm')!r})
pixels = api.decompress(open({str(DATA / 'format2' / 'rgb.pxz')!r}, 'rb').read(), net)
assert np.array_equal(pixels, np.asarray(Image.open({str(DATA / 'golden.png')!r})))
for name in ("raw", "deflate", "metadata", "gray"):
    api.read_header(open({str(DATA / 'format2')!r} + "/" + name + ".pxz", "rb").read())
registry.available()
print("torch" in sys.modules, sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "safetensors")))
""")
    assert out.split()[0] == "False", out


def test_importing_pixzip_and_its_cli_loads_nothing_heavy():
    """``import pixzip`` and the command line's module load neither numpy,
    numba, torch nor Pillow: ``pixzip --help`` starts at once."""
    out = run_fresh("""
import sys
import pixzip, pixzip.cli.main, pixzip.codec
print(sorted(m for m in ("numpy", "numba", "torch", "PIL", "constriction") if m in sys.modules))
""")
    assert out.strip() == "[]", out


def test_compress_on_the_cpu_imports_no_torch():
    out = run_fresh(f"""
import sys
import numpy as np
import pixzip
from pixzip.codec.network import registry
net = registry.load_model({str(DATA / 'golden-tiny.pxm')!r})
img = np.zeros((3, 4, 3), np.uint8)
assert np.array_equal(pixzip.decompress(pixzip.compress(img, net, payload="network"), net), img)
print("torch" in sys.modules)
""")
    assert out.strip() == "False", out


def module_level_imports(path: Path) -> set[str]:
    """The top-level packages a module imports when it is imported (not
    inside functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", sorted(p for p in CODEC.rglob("*.py") if p.name != "integer_torch.py"),
                         ids=lambda p: str(p.relative_to(CODEC)))
def test_no_codec_module_imports_torch_at_module_level(path):
    """Only ``network/integer_torch.py``, the integer network in PyTorch, may; it is imported lazily."""
    assert "torch" not in module_level_imports(path)


def test_only_the_range_coder_imports_constriction():
    users = {p.name for p in (ROOT / "pixzip").rglob("*.py") if "constriction" in module_level_imports(p)}
    assert users == {"rangecoder.py"}


def test_the_contract_is_where_the_encoder_decoder_and_sampler_take_it_from():
    """The counts' dtype, the coder's id and the scales are defined once, in
    codec/contract.py; the modules that use them import them from there."""
    from pixzip.codec.format import container
    from pixzip.codec import contract
    from pixzip.codec.network import enc_stream, modelfile
    assert container.CODER is contract.CODER_ID
    assert modelfile.requantization.__globals__["ACC_LIMIT"] is contract.ACC_LIMIT
    assert enc_stream.step_destinations is contract.step_destinations
    for p in (ROOT / "pixzip").rglob("*.py"):
        if p.name == "contract.py":
            continue
        tree = ast.parse(p.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name) and t.id in ("GATE_UNITS", "GATE_LIMIT", "TABLE_BITS", "LOGIT_UNITS",
                                                            "COUNT_BITS", "ACT_MAX", "COUNT_DTYPE", "CODER_ID"):
                        raise AssertionError(f"{p}: defines {t.id}, which contract.py owns")


def test_the_counts_rule_of_the_contract_is_the_kernels_and_the_references():
    """contract.counts (numpy) gives the reference network's counts (torch)."""
    import numpy as np
    import torch

    from pixzip.codec import contract
    from pixzip.codec.network.integer_torch import network

    from .conftest import tiny_int_model
    net = tiny_int_model(3)
    img = np.random.default_rng(0).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    ref = network(net)
    logits = ref.logits(torch.from_numpy(img)[None])
    got = contract.counts(logits.numpy().astype(np.int64), net.exp)
    assert got.dtype == contract.COUNT_DTYPE and got.flags.c_contiguous
    assert np.array_equal(got, ref.counts(logits).numpy()) and got.min() >= 1


def test_every_package_folder_is_installed():
    """Each folder of the package with an ``__init__.py`` is listed in
    pyproject's packages: a wheel built from it holds every module (an
    unlisted subpackage works in an editable checkout and fails installed)."""
    import tomllib
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "pixzip").rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)


def test_decompress_to_standard_output_in_a_fresh_process():
    """``pixzip decompress -c`` in a new process (Pillow's writers not yet
    registered, no file opened before) writes the image."""
    import io

    import numpy as np
    from PIL import Image
    r = subprocess.run([sys.executable, "-m", "pixzip", "decompress", "-c", str(DATA / "format2" / "raw.pxz")],
                       capture_output=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(io.BytesIO(r.stdout)))
    assert np.array_equal(out, np.asarray(Image.open(DATA / "golden.png")))



def layout_map() -> dict[str, str]:
    """The map of the layout (docs/design.md, "Layout"): path -> what it
    holds.  Each line is a name and its one-line role, indented two spaces
    a level under the folder above; a line that starts with spaces only
    continues the role above."""
    text = (ROOT / "docs" / "design.md").read_text()
    block = text.split("## 10. Layout", 1)[1].split("```", 2)[1]
    found, folders = {}, []
    last = None
    for line in block.strip("\n").splitlines():
        indent = len(line) - len(line.lstrip(" "))
        name, _, role = line.strip().partition(" ")
        if indent >= 20 or not name:            # the role above, continued
            found[last] += " " + line.strip()
            continue
        depth = indent // 2
        folders = folders[:depth]
        path = "".join(folders) + name if depth else name
        found[path] = role.strip()
        last = path
        if name.endswith("/"):
            folders.append(name if depth else name)
    return found


def test_the_layout_map_names_every_module_and_only_modules_that_exist():
    """Every module of pixzip/ and cli/ is on the map with its role, and
    every module on the map exists: the map is where a newcomer starts."""
    mapped = layout_map()
    modules = {str(p.relative_to(ROOT)) for d in ("pixzip", "cli") for p in (ROOT / d).rglob("*.py")
               if p.name != "__init__.py"}
    on_map = {p for p in mapped if p.endswith(".py")}
    assert not modules - on_map, f"modules missing from the map in docs/design.md: {sorted(modules - on_map)}"
    missing = {p for p in on_map - modules if not (ROOT / p).is_file()}     # a package's __init__.py may be named
    assert not missing, f"the map names modules that do not exist: {sorted(missing)}"
    assert all(mapped[p] for p in on_map), "every module on the map says what it holds"
