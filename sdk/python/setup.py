"""Build hook of vkhost-sdk: compiles the provider protocol into Python stubs.

setuptools runs `build_py` while building the wheel; the override below runs
grpcio-tools' bundled protoc over proto/vkhost/provider/v1/*.proto and writes
`vkhost/provider/v1/*_pb2.py`, `*_pb2_grpc.py` and `*.pyi` into the build
directory next to the `vkhost_sdk` package, so the installed wheel carries
them and the source tree never does.

The .proto files are found through $VKHOST_PROTO_DIR, or else at
../../proto relative to this file (the repository layout). Everything else
about the package is in pyproject.toml.
"""

import os
import pathlib

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = pathlib.Path(__file__).resolve().parent
PROTO_PACKAGE = pathlib.PurePosixPath("vkhost/provider/v1")


def proto_root() -> pathlib.Path:
    """The directory that holds vkhost/provider/v1/*.proto; exits if none."""
    candidates = []
    if os.environ.get("VKHOST_PROTO_DIR"):
        candidates.append(pathlib.Path(os.environ["VKHOST_PROTO_DIR"]))
    candidates.append(HERE.parent.parent / "proto")
    for root in candidates:
        if (root / PROTO_PACKAGE / "pods.proto").is_file():
            return root.resolve()
    raise SystemExit(
        "vkhost-sdk: cannot find the protocol files (vkhost/provider/v1/*.proto) in "
        + ", ".join(str(c) for c in candidates)
        + "; build from a vkhost checkout or set VKHOST_PROTO_DIR to its proto/ directory")


class BuildWithStubs(build_py):
    """build_py that also generates the gRPC stubs into build_lib."""

    def run(self) -> None:
        super().run()
        self.generate_stubs(pathlib.Path(self.build_lib).resolve())

    def generate_stubs(self, out: pathlib.Path) -> None:
        # Imported here: grpcio-tools is a build requirement only.
        import grpc_tools
        from grpc_tools import protoc

        root = proto_root()
        sources = sorted(str(p.relative_to(root)) for p in (root / PROTO_PACKAGE).glob("*.proto"))
        well_known = pathlib.Path(grpc_tools.__file__).parent / "_proto"
        out.mkdir(parents=True, exist_ok=True)
        args = ["grpc_tools.protoc", f"-I{root}", f"-I{well_known}",
                f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}",
                *sources]
        self.announce(f"generating gRPC stubs from {root}/{PROTO_PACKAGE}", level=2)
        # protoc resolves the relative source names against the -I roots.
        cwd = os.getcwd()
        os.chdir(root)
        try:
            code = protoc.main(args)
        finally:
            os.chdir(cwd)
        if code != 0:
            raise SystemExit(f"vkhost-sdk: protoc failed with status {code} on {sources}")
        # vkhost and vkhost.provider stay namespace packages; v1 is a package.
        (out / PROTO_PACKAGE / "__init__.py").write_text(
            '"""Generated from proto/vkhost/provider/v1 when vkhost-sdk was built."""\n')


def scratch_options() -> dict:
    """Where setuptools keeps its intermediate files.

    $VKHOST_SDK_BUILD_DIR (the CMake build sets it) keeps them out of the
    source tree, so builds from several build directories do not share them.
    """
    scratch = os.environ.get("VKHOST_SDK_BUILD_DIR")
    if not scratch:
        return {}
    os.makedirs(scratch, exist_ok=True)
    return {"build": {"build_base": os.path.join(scratch, "build")},
            "egg_info": {"egg_base": scratch}}


setup(cmdclass={"build_py": BuildWithStubs}, options=scratch_options())
