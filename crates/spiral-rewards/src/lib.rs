//! Verifiable rewards for SPIRAL: pure functions of text that score a response in [0, 1].
//!
//! - **Math answers** ([`MathReward`], [`math_equal`]): the final answer found as Math-Verify
//!   finds it (a `\boxed{}`, an answer marker, else the last math span or number), normalised, and compared with the reference by exact rationals, numeric
//!   tolerance, structure (tuples, intervals, sets, equations) and randomised numeric evaluation
//!   of symbolic expressions (conventions below).
//! - **Countdown** ([`CountdownReward`], [`CountdownConfig`]): a seeded generator of solvable
//!   problems, a solver for solution traces, and an exact verifier.
//! - **Arithmetic** ([`ArithReward`], [`ArithConfig`]): multi-step integer expressions with
//!   one-operation-per-line traces.
//! - **Combination** ([`CombinationReward`], [`CombinationConfig`]): several independent linear
//!   congruences per problem, one checkable answer line each, so that an aggregator can assemble
//!   a correct answer from the right parts of several candidates.
//! - **Datasets** ([`load_jsonl`], [`split`], [`dedup`]) and **scoring files** ([`score_jsonl`],
//!   the logic of `spiral-eval score`).
//!
//! Every reward implements [`Reward`]: (problem, response) -> [`Scored`] (reward, extracted
//! answer, [`Failure`] reason). Rewards never panic and bound their time and memory on any input:
//! megabyte responses, thousands of nested braces, `10^{10^{10}}`, division by zero.
//!
//! This crate depends on no model code, so other projects can reuse it as a grader.
//!
//! # Math grading conventions
//!
//! It follows the conventions that the Qwen2.5-Math grader (`evaluation/grader.py`, `parser.py`) and
//! Hugging Face's Math-Verify share, so that rewards and reported accuracies mean what they mean
//! elsewhere. Where the two differ, this crate chooses as follows:
//!
//! | Question | Qwen2.5-Math | Math-Verify | Here |
//! |---|---|---|---|
//! | Integers and fractions | float `isclose(rel_tol=1e-4)` (so `100000 = 100001`) | exact (sympy) | **exact**, big integers and rationals |
//! | Decimal vs fraction (`0.3333` vs `1/3`) | rel. 1e-4 | rounded to `float_rounding` digits | **rel. 1e-4** when a side has a decimal point, computed exactly on the rationals (no absolute tolerance: `1e-20` ≠ `0`; `10^{400}` ≠ `0.5`) |
//! | Irrational constants (`\sqrt 8` vs `2\sqrt 2`) | sympy `simplify`, then rel. 1e-4 | sympy | numeric, **rel. 1e-9** (1e-4 with a decimal) |
//! | Percent (`50\%` vs `0.5`) | also accepts x100 and /100 | converted to /100 | [`PercentMode`]: **`Either`** (default) `50\%` = `50` = `0.5`, only for a side marked `%`, `percent`, `pct`; `Strict` drops the mark |
//! | Bracket kind (`(1,2)` vs `[1,2]`) | ignored | kept for intervals | **kept for two items** (intervals); ignored for longer tuples |
//! | Bare lists (`1, 2` vs `2, 1`) | text (ordered) | sets | **unordered** |
//! | Bare list vs tuple (`3, 4` vs `(3, 4)`; `x=5, y=6` vs `(5,6)`) | equal (brackets stripped) | set ≠ tuple (strict mode) | **equal item by item, in order**, whatever the brackets (`3, 4` ≠ `(4, 3)`) |
//! | Plain braces (`{1,2}` vs `\{2,1\}` vs `1,2`) | braces stripped (ordered) | grouping | **a bare list** when the braces wrap the whole answer and hold a top-level comma (unordered against sets, in order against tuples); otherwise LaTeX grouping (`{5}` = `5`) |
//! | `x = 5` vs `5` | rhs if the lhs has ≤ 2 characters | rhs if the lhs is a symbol | **rhs if the lhs is a variable or a label** (`(p,q)`, `f(x)`, `\|AB\|`, `A:B`; `a+3z = 0` is not `0`) |
//! | Equation vs equation | `l1-r1 = ±(l2-r2)` | also up to a constant factor | **up to a non-zero constant factor** |
//! | `x > 3` vs `(3, \infty)` | no | only with `allow_set_relation_comp` | **yes** (one variable, linear: `-x > -3` = `x < 3`; `x \ne 3` is a union) |
//! | Several boxed answers | last | all, as a set | **all**, as a list, when the reference is a list or set; else the last |
//! | `1 \pm 2` | sympy fails | supported | **the set `{3, -1}`** |
//! | Mixed numbers | `2\frac12` = `2 * 1/2` | `4 4/9` = 40/9 | **`2\frac12` and `2 1/2` = 5/2** (proper fractions only) |
//! | `\log x` | natural | natural | natural |
//! | Multiple choice | gold `A`-`E`, last letter of the prediction | letter extraction | one side a bare upper-case letter `A`-`Z` (or `(B)`), the other `B`, `(B)`, `(B) text`, `\text{(B)}`, **either way round** (`math_equal` is symmetric) |
//! | Unit words | `\text{}` stripped | units stripped | `\text{}` unwrapped, multi-letter unit words dropped (`5m` may be a product) |
//!
//! Symbolic equivalence (`x^2+2x+1` vs `(x+1)^2`) is decided by evaluating both sides at six fixed
//! pseudo-random complex points rather than by `simplify`: equal polynomials and elementary
//! identities agree at every point, distinct ones almost surely differ somewhere.
//!
//! Numbers are never compared through an infinite or vanished float. Exact values are compared as
//! rationals; a numeric value that overflows `f64` (`10^{5000}`) or underflows it (`10^{-16000}`,
//! `e^{-1000}`) is undefined and equal to nothing, so `10^{-16000}` is not `0` (it is not, exactly).
//! A bare list is equal to a set or another bare list as sets, and to a tuple as a tuple, so the
//! relation is not transitive (`1, 2` = `2, 1` = `(2, 1)` ≠ `(1, 2)` = `1, 2`); neither is any
//! tolerance. It is symmetric: `math_equal(a, b) == math_equal(b, a)`.
//!
//! # Robustness and speed
//!
//! Beyond the unit tests, `tests/properties.rs` runs seeded property tests over random bytes and
//! adversarial LaTeX, `fuzz/` is a `cargo fuzz` target over every reward
//! (`cd crates/spiral-rewards && cargo +nightly fuzz run verifier -- -max_total_time=300`), and
//! `cargo bench -p spiral-rewards` measures responses per second on 2 KB responses.
//!
//! # Example
//!
//! ```
//! use spiral_rewards::{CountdownConfig, CountdownReward, MathProblem, MathReward, Reward};
//!
//! // Grade a math response.
//! let problem = MathProblem::new("Expand (x+1)^2.", "x^2+2x+1");
//! let scored = MathReward::default().score(&problem, "... so the result is \\boxed{(x+1)^2}.");
//! assert_eq!(scored.reward, 1.0);
//!
//! // Generate Countdown problems and their warm-start traces, and check the traces.
//! for p in CountdownConfig::default().generate(3, 0).unwrap() {
//!     let trace = p.solution_trace().unwrap();
//!     assert!(CountdownReward::default().score(&p, &trace).is_correct());
//! }
//! ```

mod arith;
mod combination;
mod countdown;
mod dataset;
mod distinct;
mod error;
mod extract;
mod math;
mod prompt;
mod reward;
mod score;
mod task;
mod trials;

pub use arith::{ArithConfig, ArithProblem, ArithReward, ArithStep, evaluate_steps};
pub use combination::{CombinationConfig, CombinationProblem, CombinationReward, Congruence};
pub use countdown::{
    CountdownConfig, CountdownProblem, CountdownReward, MAX_SOLVER_NUMBERS, Op, Solution, Step,
    solve as solve_countdown,
};
pub use dataset::{FieldNames, Split, dedup, is_parquet, load_jsonl, read_jsonl, split};
pub use error::RewardError;
pub use extract::{extract_answer, last_boxed};
pub use math::{
    MAX_ANSWER_BYTES, MathProblem, MathReward, PercentMode, answer_classes, math_equal,
    math_equal_with, normalize_answer,
};
pub use prompt::PromptStyle;
pub use reward::{Failure, Reward, Scored};
pub use score::{ScoreOptions, ScoreSummary, score_jsonl};
pub use task::{Problem, Task, TaskReward};
pub use trials::TrialTraces;
