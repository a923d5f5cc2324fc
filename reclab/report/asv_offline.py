"""asv's published site, offline: its pages without a CDN, and readable when opened from a file.

asv 0.6's `index.html` (copied into the HTML folder by `asv publish`) loads jQuery, flot and its
plugins, stupidtable, blueimp-md5 and Bootstrap from CDNs. `make_offline(html_dir)` copies local
copies of them (taken from the npm registry's packages, `asv_static/manifest.json`: package,
version, file inside the tarball, sha256, and the CDN address each replaces) into `html_dir/vendor/`
and points index.html's tags at them (without their integrity, crossorigin and referrerpolicy
attributes); a tag it expects and does not find is an error naming it (another asv than 0.6).

A page opened from a file may not read other files with XMLHttpRequest, which is how asv's pages
read their data; so the step also writes every JSON file of the site into one script, `asv-data.js`,
which `asv-offline.js` (loaded after jQuery) serves asv's requests from when the page is a file.
Over HTTP (`asv preview`, a web server) the pages read the JSON files as before.

Run it after each `asv publish`: `python -m reclab.report.asv_offline HTML_DIR` (the nox sessions do).
`python -m reclab.report.asv_offline --refetch` downloads the packages again with npm and checks the
shipped copies against the manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import msgspec

from reclab.errors import LabError

STATIC = Path(__file__).with_name("asv_static")
MANIFEST = STATIC / "manifest.json"
VENDOR = "vendor"  # the folder of the local copies, in the published site
SHIM = "asv-offline.js"  # reclab's own script: asv's data requests served from DATA when the page is a file
DATA = "asv-data.js"
MARKER = "<!-- reclab.report.asv_offline: the libraries below are local copies (vendor/, see its manifest.json) -->"
DROPPED_ATTRIBUTES = frozenset({"integrity", "crossorigin", "referrerpolicy"})
NPM_TIMEOUT_S = 120


class AsvSiteError(LabError):
    """The published asv site is not what the offline step expects (no index.html, a CDN tag missing,
    a local copy that does not match its manifest)."""


@dataclass(frozen=True)
class VendorFile:
    """One file of an npm package, shipped in asv_static/ (`path`, also its path under vendor/)."""

    package: str
    version: str
    path: str
    tarball_path: str
    sha256: str
    replaces: str | None  # the CDN address in asv's index.html it stands in for (None: a file it needs, e.g. a font)


def vendor_files(manifest: Path = MANIFEST) -> list[VendorFile]:
    """The shipped files of the manifest, in its order (index.html's order of the tags)."""
    packages = msgspec.json.decode(manifest.read_bytes())["packages"]
    return [
        VendorFile(p["npm"], p["version"], f["path"], f["tarball_path"], f["sha256"], f.get("replaces"))
        for p in packages
        for f in p["files"]
    ]


TAG = r"<(?P<name>script|link)\b(?P<attributes>[^>]*?)\s(?:src|href)=\"{url}\"(?P<rest>[^>]*)>"
ATTRIBUTE = re.compile(r"""([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
REMOTE_TAG = re.compile(r"<(?:script|link)\b[^>]*\s(?:src|href)=[\"']?((?:https?:)?//[^\"'\s>]+)[^>]*>", re.IGNORECASE)


def _local_tag(name: str, attributes: str, local: str) -> str:
    kept = []
    for match in ATTRIBUTE.finditer(attributes):
        key = match.group(1)
        if key.lower() in DROPPED_ATTRIBUTES:
            continue
        value = next((v for v in match.groups()[1:] if v is not None), None)
        kept.append(key if value is None else f'{key}="{value}"')
    attribute = "href" if name == "link" else "src"
    return f'<{name} {attribute}="{local}"{"".join(" " + k for k in kept)}>'


def localise_tags(html: str, files: list[VendorFile]) -> str:
    """asv's index.html with each CDN tag of `files` pointing to its copy under vendor/, and reclab's
    shim loaded right after jQuery. Raises AsvSiteError naming a tag it does not find exactly once,
    or a script or stylesheet still loaded from the network."""
    for file in files:
        if file.replaces is None:
            continue
        pattern = re.compile(TAG.format(url=re.escape(file.replaces)))
        found = pattern.findall(html)
        if len(found) != 1:
            how = "no tag" if not found else f"{len(found)} tags"
            raise AsvSiteError(
                f"asv's index.html has {how} loading {file.replaces} (the offline step knows asv 0.6's page): "
                f"update reclab/report/asv_static/manifest.json for this asv"
            )
        local = f"{VENDOR}/{file.path}"

        def local_tag(match: re.Match[str], local: str = local) -> str:
            return _local_tag(match["name"], match["attributes"] + " " + match["rest"], local)

        html = pattern.sub(local_tag, html)
        if file.package == "jquery":
            at = html.index(f'src="{local}"')
            end = html.index("</script>", at) + len("</script>")
            html = f'{html[:end]}\n    <script src="{SHIM}"></script>{html[end:]}'
    remote = REMOTE_TAG.findall(html)
    if remote:
        raise AsvSiteError(f"asv's index.html still loads {', '.join(remote)} from the network: add it to the manifest")
    head = html.find("<head>")
    if head < 0:
        raise AsvSiteError("asv's index.html has no <head>")
    at = head + len("<head>")
    return f"{html[:at]}\n    {MARKER}{html[at:]}"


def data_script(html_dir: Path) -> str:
    """Every JSON file of the published site, keyed by its path from the site's root, as one script."""
    entries = []
    for path in sorted(html_dir.rglob("*.json")):
        relative = path.relative_to(html_dir).as_posix()
        if relative.startswith(f"{VENDOR}/"):
            continue
        text = path.read_text()
        try:
            msgspec.json.decode(text)
        except msgspec.DecodeError as error:
            raise AsvSiteError(f"{path}: not JSON ({error})") from error
        entries.append(f"{msgspec.json.encode(relative).decode()}:{text.strip()}")
    return "/* written by reclab.report.asv_offline: the site's JSON files, for a page opened from a file */\n" + (
        "window.ASV_DATA={" + ",\n".join(entries) + "};\n"
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class OfflineSite:
    index: Path
    vendored: int  # files copied under vendor/
    data_bytes: int  # size of asv-data.js
    rewritten: bool  # False: index.html had been made offline already (only the copies and the data refreshed)


def make_offline(html_dir: Path, static: Path = STATIC) -> OfflineSite:
    """Make the site `asv publish` wrote into `html_dir` work without a network and from a file."""
    index = html_dir / "index.html"
    if not index.is_file():
        raise AsvSiteError(f"{index} not found: run `asv publish` first")
    files = vendor_files(static / "manifest.json")
    for file in files:
        source = static / file.path
        if not source.is_file() or sha256(source) != file.sha256:
            raise AsvSiteError(f"{source}: missing or not the file of {file.package} {file.version} its manifest names")
    html = index.read_text()
    rewritten = MARKER not in html
    if rewritten:
        html = localise_tags(html, files)
    vendor = html_dir / VENDOR
    shutil.rmtree(vendor, ignore_errors=True)
    shutil.copytree(static, vendor, ignore=shutil.ignore_patterns(SHIM, "__pycache__"))
    shutil.copyfile(static / SHIM, html_dir / SHIM)
    data = data_script(html_dir)
    (html_dir / DATA).write_text(data)
    if rewritten:
        index.write_text(html)
    return OfflineSite(index, len(files), len(data.encode()), rewritten)


def refetch(manifest: Path = MANIFEST, static: Path = STATIC) -> list[str]:
    """Download each package of the manifest again (`npm pack`, which checks the registry's integrity),
    and check the tarball's integrity, each file's sha256 and the shipped copy. Returns the problems
    found (empty: all match). Needs npm and the registry; not run by the tests."""
    if shutil.which("npm") is None:
        raise AsvSiteError("npm not found: it fetches the packages from the registry")
    problems = []
    with tempfile.TemporaryDirectory(prefix="reclab-npm-") as scratch:
        for package in msgspec.json.decode(manifest.read_bytes())["packages"]:
            spec = f"{package['npm']}@{package['version']}"
            packed = subprocess.run(
                ["npm", "pack", spec, "--json", "--pack-destination", scratch],
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT_S,
                check=False,
                cwd=scratch,
            )
            if packed.returncode != 0:
                problems.append(f"{spec}: npm pack failed: {packed.stderr.strip()[-300:]}")
                continue
            info = msgspec.json.decode(packed.stdout)[0]
            if info["integrity"] != package["tarball_integrity"]:
                problems.append(f"{spec}: tarball integrity {info['integrity']} is not the manifest's")
            with tarfile.open(Path(scratch) / info["filename"]) as tarball:
                wanted = [*package["files"], package["license_file"]]
                for file in wanted:
                    if file.get("tarball_path") is None:
                        continue
                    member = tarball.extractfile(file["tarball_path"])
                    if member is None:
                        problems.append(f"{spec}: no {file['tarball_path']} in the tarball")
                        continue
                    digest = hashlib.sha256(member.read()).hexdigest()
                    if digest != file["sha256"]:
                        problems.append(f"{spec}: {file['tarball_path']} has sha256 {digest}, the manifest {file['sha256']}")
                    if sha256(static / file["path"]) != digest:
                        problems.append(f"{spec}: the shipped {file['path']} differs from {file['tarball_path']}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reclab.report.asv_offline", description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", nargs="?", type=Path, help="the folder `asv publish` wrote (asv.conf.json's html_dir)")
    parser.add_argument(
        "--refetch", action="store_true", help="fetch the packages again with npm and check them against the manifest"
    )
    args = parser.parse_args(argv)
    if not args.refetch and args.html_dir is None:
        parser.error("give the HTML folder (or --refetch)")
    try:
        if args.refetch:
            problems = refetch()
            for problem in problems:
                print(f"asv_offline: {problem}", file=sys.stderr)
            print(f"asv_offline: {len(vendor_files())} files checked against the npm registry, {len(problems)} problems")
            if problems:
                return 1
        if args.html_dir is not None:
            site = make_offline(args.html_dir)
            what = "tags pointed to local copies" if site.rewritten else "already offline, copies and data refreshed"
            print(f"asv_offline: {site.index}: {what}; {site.vendored} files in {VENDOR}/, {DATA} {site.data_bytes / 1e3:.0f} kB")
    except LabError as error:
        print(f"asv_offline: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
