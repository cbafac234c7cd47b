"""`make bench`: build a database of 100,000 children (once), then time the app and print a table.

Each area adds a module to AREAS with build(app) (extra data, optional) and measure(bench).
"""

import hashlib
import importlib
import resource
import shutil
import subprocess
import sys
import time

from bench.harness import BENCH_DIR, CHILDREN, Bench, db, make_app, print_table

AREAS = ("bench.register",)
AREAS += ("bench.assessment",)
AREAS += ("bench.activities",)
AREAS += ("bench.funds",)
AREAS += ("bench.supervision",)
AREAS += ("bench.dossier",)
AREAS += ("bench.bare",)
AREAS += ("bench.sessions",)
AREAS += ("bench.uploads",)
AREAS += ("bench.records",)
AREAS += ("bench.indicators",)
AREAS += ("bench.desk",)
AREAS += ("bench.casework",)
AREAS += ("bench.field",)
AREAS += ("bench.process",)


def schema_fingerprint() -> str:
    """The models' tables, columns and indexes: a database built for other models is rebuilt."""
    from sqlalchemy.schema import CreateIndex, CreateTable

    from models import db as models_db

    ddl = []
    for table in models_db.metadata.sorted_tables:
        ddl.append(str(CreateTable(table)))
        ddl.extend(sorted(str(CreateIndex(index)) for index in table.indexes))
    return hashlib.sha256("\n".join(ddl).encode()).hexdigest()


def build(db_path, modules) -> None:
    """Write the benchmark database (run in a child process, so its memory is not the app's)."""
    app = make_app(db_path)
    with app.app_context():
        start = time.perf_counter()
        db.create_all()
        from seeds.demo import seed_demo

        seed_demo(children=CHILDREN)
        print(f"built {CHILDREN} children in {time.perf_counter() - start:.0f} s", flush=True)
        for module in modules:
            if hasattr(module, "build"):
                start = time.perf_counter()
                module.build(app)
                print(f"built data of {module.__name__} in {time.perf_counter() - start:.0f} s", flush=True)
        db.session.execute(db.text("ANALYZE"))
        db.session.commit()
    db_path.with_suffix(".schema").write_text(schema_fingerprint())


def main(argv: list[str]) -> int:
    only = [a for a in argv if not a.startswith("--")]
    names = [n for n in AREAS if not only or n.rsplit(".", 1)[-1] in only]
    modules = [importlib.import_module(name) for name in names]
    # Parts that add no data of their own share one database of the children alone.
    building = [n.rsplit(".", 1)[-1] for n, m in zip(names, modules, strict=True) if hasattr(m, "build")]
    # --on-full: measure the named areas on the full database (built with every area's data)
    suffix = ("-" + "-".join(building) if building else "-base") if only and "--on-full" not in argv else ""
    db_path = BENCH_DIR / f"bench-{CHILDREN}{suffix}.db"
    if "--build" in argv:
        build(db_path, modules)
        return 0
    marker = db_path.with_suffix(".schema")
    if db_path.exists() and (not marker.exists() or marker.read_text() != schema_fingerprint()):
        print(f"{db_path.name} was built for an older schema: rebuilding it", flush=True)
        for stale in (
            db_path,
            db_path.with_name(db_path.name + "-wal"),
            db_path.with_name(db_path.name + "-shm"),
        ):
            stale.unlink(missing_ok=True)
        shutil.rmtree(db_path.with_suffix(".attachments"), ignore_errors=True)
    if not db_path.exists():
        shutil.rmtree(db_path.with_suffix(".attachments"), ignore_errors=True)
        print(f"building the benchmark database {db_path.name} (once; delete it to rebuild) …", flush=True)
        subprocess.run([sys.executable, "-m", "bench.run", "--build", *only], check=True)
    app = make_app(db_path)
    bench = Bench(app)
    for module in modules:
        print(f"{module.__name__}:", flush=True)
        with app.app_context():
            module.measure(bench)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print_table(bench.rows, peak_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
