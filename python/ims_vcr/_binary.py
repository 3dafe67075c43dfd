"""Finding the `ims-vcr` binary."""

import os
import shutil
import sysconfig

ENV_BIN = "IMS_VCR_BIN"
NAME = "ims-vcr"


def find_binary():
    """The `ims-vcr` executable to run.

    In order: `IMS_VCR_BIN` (an explicit choice, e.g. a `cargo build` of a checkout), the binary
    this wheel installed into the running interpreter's scripts folder (found even when the venv
    is not activated, e.g. `.venv/bin/pytest`), then `ims-vcr` on PATH.
    """
    explicit = os.environ.get(ENV_BIN)
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise FileNotFoundError(f"{ENV_BIN}={explicit} is not an executable file")
        return explicit
    exe = NAME + (".exe" if os.name == "nt" else "")
    scripts = sysconfig.get_path("scripts")
    if scripts:
        candidate = os.path.join(scripts, exe)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(NAME)
    if found:
        return found
    raise FileNotFoundError(
        f"cannot find the {NAME} binary: `pip install ims-vcr` (it installs the binary into the "
        f"venv), put {NAME} on PATH, or set {ENV_BIN}=/path/to/{NAME}"
    )
