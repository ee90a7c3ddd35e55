"""What the README promises a new user: the demo scene, its commands, its table of map codes."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import numpy as np
import rasterio
from click.testing import CliRunner

from s2lc.classify import output_paths
from s2lc.cli.main import cli
from s2lc.demo import DEMO_PRODUCT, demo_product
from s2lc.legend import default_legend

README = Path(__file__).resolve().parents[1] / "README.md"


def _commands() -> list[list[str]]:
    """The ``$ s2lc …`` commands of the README's console blocks, continuation lines joined."""
    text = README.read_text(encoding="utf-8").replace("\\\n", " ")
    return [shlex.split(line.split("#")[0])[1:] for line in re.findall(r"^\$ (s2lc .*)$", text, flags=re.MULTILINE)]


def test_the_readme_change_example_names_the_files_classify_writes():
    written = set()
    for args in _commands():
        if args[:1] == ["classify"] and "--demo" not in args:
            product, out = args[1], args[args.index("-o") + 1]
            written.add(str(output_paths(Path(out), Path(product).name.removesuffix(".SAFE"))["map"]))
    changes = [args for args in _commands() if args[:1] == ["change"]]
    assert changes and written
    for args in changes:
        maps = [a for a in args[1:args.index("-o")]]
        assert len(maps) >= 2 and set(maps) <= written, (maps, written)


def test_the_readme_table_of_map_codes_is_the_legend():
    text = README.read_text(encoding="utf-8")
    table = text[text.index("## Map codes"):text.index("## Units and conventions")]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and cells[0].isdigit():
            for code, name, label in (cells[0:3], cells[4:7]):
                if code:
                    rows[int(code)] = (name.strip("`"), label)
    legend = default_legend()
    assert rows.pop(0) == ("", "No data")
    assert rows == {c.code: (c.name, c.label) for c in legend.classes}


def test_the_demo_scene_ships_inside_the_package_and_is_small():
    path = demo_product()
    assert path.name == DEMO_PRODUCT and path.is_dir()
    assert sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) <= 10 * 2**20


def test_classify_demo_maps_the_shipped_scene_with_nan_confidence_under_cloud_and_no_data(tmp_path):
    out = tmp_path / "demo"
    r = CliRunner().invoke(cli, ["-q", "classify", "--demo", "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["provenance"]["product_id"] == DEMO_PRODUCT.removesuffix(".SAFE")
    assert summary["stats"]["patches"]["total"] == 288
    paths = output_paths(out, DEMO_PRODUCT.removesuffix(".SAFE"))
    with rasterio.open(paths["map"]) as m, rasterio.open(paths["confidence"]) as c:
        codes, conf = m.read(1), c.read(1)
    legend = default_legend()
    no_class = np.isin(codes, [0, legend.cloud_code, legend.snow_code])
    assert np.array_equal(np.isnan(conf), no_class)
    assert (conf[~no_class] > 0).all()


def test_demo_and_a_product_together_or_neither_is_a_usage_error(tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli, ["classify", "--demo", str(tmp_path), "-o", str(tmp_path / "a")])
    assert r.exit_code == 2 and "give either PRODUCT or --demo" in r.output
    r = runner.invoke(cli, ["classify", "-o", str(tmp_path / "b")])
    assert r.exit_code == 2 and "missing PRODUCT (or --demo" in r.output
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
