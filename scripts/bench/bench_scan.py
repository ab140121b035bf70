"""Cost of the pre-flight image scan (``data.scan_images``) against one pass of the training
loader's decoding over the same folder, measured side by side. Prints ratios; not a test.

    python scripts/bench/bench_scan.py                  # the embedded digits folder (1,438 PNGs)
    python scripts/bench/bench_scan.py --root /data/imagenet/train --workers 8
"""
import argparse
import time

from solo_semppl.data.folder_check import image_folder, scan_folder


def seconds(fn, repeats=3):
    """Best of ``repeats`` wall times (the machine is shared: the minimum is the least noisy)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="an image folder (default: the digits training folder)")
    parser.add_argument("--workers", type=int, default=1, help="scan threads (data.num_workers)")
    args = parser.parse_args()
    if args.root is None:
        from solo_semppl.data.digits import materialise_digits

        args.root = str(materialise_digits() / "train")
    dataset = image_folder(args.root)
    decode = seconds(lambda: [dataset[i] for i in range(len(dataset))])
    print(f"{args.root}: {len(dataset)} images, one decoding pass {decode:.2f} s")
    for mode in (False, True, "full"):
        t = seconds(lambda: scan_folder(args.root, "data.train_path", mode, args.workers))
        print(f"  scan_images={str(mode).lower():<5}  {t:7.2f} s   scan / decoding pass = {t / decode:.2f}")


if __name__ == "__main__":
    main()
