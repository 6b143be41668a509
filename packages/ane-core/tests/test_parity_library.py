"""``ane_core.parity``: parity as a library call, with no CLI anywhere near it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ane_core.errors import UsageError
from ane_core.parity import check_parity, check_settings
from ane_core.targets import Precision
from ane_core.testing import ToyArchitecture

NO_CLICK_RUN = """
import json, sys
from ane_core.parity import check_parity
from ane_core.targets import Precision
from ane_core.testing import ToyArchitecture
arch = ToyArchitecture()
report = check_parity(arch, weights=arch.load_weights("small", None), precisions=[Precision.FP16])
print(json.dumps({"passed": report.passed, "rows": len(report.rows),
                  "click": "click" in sys.modules}))
"""


def test_a_package_s_parity_from_python_imports_no_click():
    out = subprocess.run(
        [sys.executable, "-c", NO_CLICK_RUN], capture_output=True, text=True, check=True
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"passed": True, "rows": 2, "click": False}  # ANE module + FP16 package


def test_report_rows_floors_and_json(tmp_path):
    arch = ToyArchitecture()
    report = check_parity(
        arch,
        weights=arch.load_weights("small", None),
        packages_dir=tmp_path,
        min_psnr={Precision.FP16: 200.0},  # no FP16 export is that close: it must fail
    )
    models = [(row.model, row.precision) for row in report.rows]
    assert models == [("ane-pytorch", "fp32"), ("package-mil", "fp32"), ("package-mil", "fp16")]
    assert [row.passed for row in report.rows] == [True, True, False]
    assert not report.passed and report.failed == report.rows[2:]
    as_json = report.to_json()
    assert as_json["passed"] is False and as_json["min_psnr_db"] == {"fp32": 90.0, "fp16": 200.0}
    assert sorted(p.name for p in tmp_path.glob("*.mlpackage")) == [
        "toy-encoder-ane-fp16.mlpackage",
        "toy-encoder-ane-fp32.mlpackage",
    ]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"components": ["decoder"]}, "no component 'decoder'"),
        ({"backends": ["tpu"]}, "unknown backend 'tpu'"),
        ({"compute_units": "gpu_only"}, "gpu_only"),
        ({"target": "macOS3"}, "macOS3"),
    ],
)
def test_bad_settings_are_one_line_errors_before_any_work(settings, message):
    arguments = {
        "components": None,
        "precisions": [Precision.FP32],
        "backends": None,
        "compute_units": "all",
        "target": "macOS13",
        **settings,
    }
    with pytest.raises(UsageError, match=message):
        check_settings(ToyArchitecture(), **arguments)
