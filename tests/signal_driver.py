"""Run ``mfcli`` (its real entry point, in this process) with moments of an output write
stretched so that a test's signal can land in them. Used by tests/cli/test_faults_signals.py:

    python tests/signal_driver.py PHASE MARKER_DIR -- mfcli arguments...

PHASE is where the run pauses for a while after creating ``MARKER_DIR/PHASE``:

- ``none``: nothing stretched (the run's real timing);
- ``write``: every HDF5 dataset and ENVI image written into a temporary output;
- ``commit``: the rename that makes an output appear;
- ``finalizer``: a finalizer run in the middle of writing (where Python drops exceptions).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

PAUSE = 0.4  # seconds each stretched moment lasts


def mark(folder: Path, phase: str) -> None:
    (folder / phase).touch()


def stretch(phase: str, folder: Path) -> None:
    import h5py

    import mfcli.io.atomic as atomic
    import mfcli.io.envi as envi

    if phase == "write":
        create_dataset = h5py.Group.create_dataset

        def slow_create_dataset(self, *args, **kwargs):
            mark(folder, phase)
            time.sleep(PAUSE / 4)
            return create_dataset(self, *args, **kwargs)

        h5py.Group.create_dataset = slow_create_dataset
        write_envi = envi.write_envi

        def slow_write_envi(*args, **kwargs):
            written = write_envi(*args, **kwargs)
            mark(folder, phase)
            time.sleep(PAUSE)
            return written

        envi.write_envi = slow_write_envi
    elif phase == "commit":
        def pause_before_a_final_commit(target) -> None:
            if not Path(target).parent.name.startswith("."):  # not a file inside a temporary folder
                mark(folder, phase)
                time.sleep(PAUSE)

        for name in ("rename_no_replace", "_replace_folder"):
            original = getattr(atomic, name)

            def slow(source, target, _original=original):
                pause_before_a_final_commit(target)
                return _original(source, target)

            setattr(atomic, name, slow)
        replace = os.replace

        def slow_replace(source, target, **kwargs):
            pause_before_a_final_commit(target)
            return replace(source, target, **kwargs)

        os.replace = slow_replace
    elif phase == "finalizer":
        create_dataset = h5py.Group.create_dataset

        class Slow:
            def __del__(self):
                mark(folder, phase)
                time.sleep(PAUSE)

        def create_dataset_with_a_slow_finalizer(self, *args, **kwargs):
            Slow()  # dropped at once: its finalizer runs here
            return create_dataset(self, *args, **kwargs)

        h5py.Group.create_dataset = create_dataset_with_a_slow_finalizer


if __name__ == "__main__":
    phase, folder = sys.argv[1], Path(sys.argv[2])
    arguments = sys.argv[sys.argv.index("--") + 1:]
    if phase != "none":
        stretch(phase, folder)
    from mfcli.cli.main import main

    main(arguments)
