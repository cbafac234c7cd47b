"""`make bench`: build a database of 100,000 children (once), then time the app and print a table.

Each area adds a module to AREAS with build(app) (extra data, optional) and measure(bench).
"""

import importlib
import resource
import sys
import time

from bench.harness import BENCH_DIR, CHILDREN, Bench, db, make_app, print_table

AREAS = ("bench.register",)
AREAS += ("bench.activities",)
AREAS += ("bench.funds",)


def main() -> int:
    db_path = BENCH_DIR / f"bench-{CHILDREN}.db"
    fresh = not db_path.exists()
    app = make_app(db_path)
    modules = [importlib.import_module(name) for name in AREAS]
    with app.app_context():
        if fresh:
            start = time.perf_counter()
            db.create_all()
            from seeds.demo import seed_demo

            seed_demo(children=CHILDREN)
            print(f"built {CHILDREN} children in {time.perf_counter() - start:.0f} s", flush=True)
            for module in modules:
                if hasattr(module, "build"):
                    start = time.perf_counter()
                    module.build(app)
                    print(
                        f"built data of {module.__name__} in {time.perf_counter() - start:.0f} s", flush=True
                    )
            db.session.execute(db.text("ANALYZE"))
            db.session.commit()
    bench = Bench(app)
    for module in modules:
        with app.app_context():
            module.measure(bench)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print_table(bench.rows, peak_mb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
