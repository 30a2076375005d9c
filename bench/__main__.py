"""`python -m bench`: run the suite, write bench/results/*.json, re-render BENCHMARKS.md."""

import argparse
import os
import sys

from bench.report import PARTS

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def parse(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes and few repeats: a smoke run of every code path")
    p.add_argument("--gpu", action="store_true",
                   help="run on the first GPU and report absolute times (bench/results/gpu/)")
    p.add_argument("--only", default=",".join(PARTS),
                   help=f"comma-separated parts to run (default: all of {', '.join(PARTS)})")
    p.add_argument("--out", default=None,
                   help="directory for the JSON results (default: bench/results, "
                        "bench/results/gpu with --gpu, bench/results/quick.tmp with --quick)")
    p.add_argument("--markdown", default=None,
                   help="the BENCHMARKS.md to re-render (default: BENCHMARKS.md at the "
                        "repository root when writing to the default results directory)")
    p.add_argument("--report", action="store_true",
                   help="only re-render the markdown from existing JSON results")
    args = p.parse_args(argv)
    parts = [x.strip() for x in args.only.split(",") if x.strip()]
    for part in parts:
        if part not in PARTS:
            p.error(f"Invalid value for argument `--only`: expected parts among "
                    f"{', '.join(PARTS)}. Received: {part!r}")
    args.parts = parts
    default_out = os.path.join(HERE, "results")
    if args.quick:
        # quick results are throwaway: *.tmp under bench/results is git-ignored
        default_out = os.path.join(default_out, "quick.tmp")
    if args.gpu:
        default_out = os.path.join(default_out, "gpu")
    if args.out is None:
        args.out = default_out
        if args.markdown is None and not args.quick:
            args.markdown = os.path.join(ROOT, "BENCHMARKS.md")
    return args


def setup_environment(gpu):
    """Backend and devices, before TensorFlow is imported: CPU only unless --gpu."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpu:
        if not gpus:
            raise SystemExit("--gpu was given but TensorFlow sees no GPU.")
        tf.config.set_visible_devices(gpus[:1], "GPU")
        return "GPU " + tf.config.experimental.get_device_details(gpus[0]).get(
            "device_name", gpus[0].name)
    tf.config.set_visible_devices([], "GPU")
    return "CPU"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if not args.report:
        backend = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        if backend != "tensorflow":
            # the suite is TensorFlow's (its parts feed tf.data, its JSON records TensorFlow's
            # version): refused rather than written over the TensorFlow results
            raise SystemExit(
                f"python -m bench runs on TensorFlow; this process has KERAS_BACKEND={backend}. "
                "On JAX or PyTorch run the per-step overhead part with "
                "`KERAS_BACKEND=<backend> python -m bench.overhead` (BENCHMARKS.md section 9).")
        device = setup_environment(args.gpu)
        from bench import common  # noqa: E402  (after the environment is set)

        command = " ".join(["python -m bench", *argv])
        for part in args.parts:
            module = __import__(f"bench.{part}", fromlist=["run"])
            common.log(f"[bench] {part} ...")
            start = common.now()
            result = module.run(args.quick)
            seconds = common.now() - start
            result = {"meta": {**common.machine_info(command, device), "seconds": seconds},
                      **result}
            path = os.path.join(args.out, f"{part}.json")
            common.write_json(path, result)
            common.log(f"[bench] {part}: {seconds:.0f} s -> {path}")
    if args.markdown:
        from bench import report

        results = os.path.join(HERE, "results")
        if os.path.abspath(args.out) in (results, os.path.join(results, "gpu")):
            # the committed results: CPU tables, and a GPU section where one was run
            report.update_markdown(args.markdown, results, os.path.join(results, "gpu"))
        else:
            report.update_markdown(args.markdown, args.out)
        print(f"[bench] wrote {args.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
