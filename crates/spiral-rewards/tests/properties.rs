//! Property and fuzz-style tests over random inputs: rewards never panic, stay in [0, 1] and
//! finish quickly on arbitrary bytes and on adversarial LaTeX soup; grading is reflexive and
//! invariant under rewritings that keep the value; generated tasks always verify.
//!
//! Seeded with `rand` so failures reproduce; the `cargo fuzz` target in `fuzz/` explores the same
//! entry points with coverage guidance.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use spiral_rewards::{
    ArithConfig, ArithProblem, ArithReward, CombinationConfig, CombinationProblem,
    CombinationReward, Congruence, CountdownConfig, CountdownProblem, CountdownReward, MathProblem,
    MathReward, Reward, extract_answer, math_equal, normalize_answer,
};

/// Fragments that exercise every branch of the normaliser, lexer and parser.
const FRAGMENTS: &[&str] = &[
    "\\boxed{",
    "\\fbox{",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\\{",
    "\\}",
    "\\frac",
    "\\dfrac",
    "\\sqrt",
    "\\sqrt[3]",
    "^",
    "_",
    "10^{10^{10}}",
    "2^{-",
    "!",
    "\\binom",
    "\\left(",
    "\\right)",
    "\\text{",
    "cm",
    " ",
    ",",
    "1,000",
    ".",
    "0",
    "1",
    "7",
    "12",
    "3.5",
    "1e5",
    "-",
    "+",
    "*",
    "/",
    "=",
    "<",
    "\\le",
    "\\pm",
    "\\cup",
    "\\infty",
    "\\pi",
    "e",
    "i",
    "x",
    "y",
    "\\sin",
    "\\log_",
    "\\ln",
    "|",
    "\\\\",
    "&",
    "\\begin{pmatrix}",
    "\\end{pmatrix}",
    "\\emptyset",
    "%",
    "\\%",
    "$",
    "^\\circ",
    "\\lfloor",
    "\\rfloor",
    "answer is",
    "Answer:",
    "####",
    "\n",
    "\\",
    "é",
    "∞",
    "√",
    "\\times",
    "\\div",
    "\\cdot",
    "(B)",
    "\\mathrm{",
    "0/0",
    "1/0",
    "99999999999999999999",
];

/// A random string of up to `len` fragments.
fn soup(rng: &mut StdRng, len: usize) -> String {
    let n = rng.random_range(0..=len);
    (0..n).map(|_| *FRAGMENTS.choose(rng).unwrap()).collect()
}

/// Random bytes, read as UTF-8 with replacement characters.
fn bytes(rng: &mut StdRng, len: usize) -> String {
    let n = rng.random_range(0..=len);
    let raw: Vec<u8> = (0..n).map(|_| rng.random()).collect();
    String::from_utf8_lossy(&raw).into_owned()
}

/// Scores `response` with every reward and checks the invariants.
fn check_all(response: &str, reference: &str) {
    let start = Instant::now();
    let math = MathReward { format_score: 0.1, ..MathReward::default() }
        .score(&MathProblem::new("q", reference), response);
    let countdown =
        CountdownReward::default().score(&CountdownProblem::new(vec![75, 25, 2], 100), response);
    let arith = ArithReward::default()
        .score(&ArithProblem { expression: "1+1".into(), answer: 2 }, response);
    let combination_problem = CombinationProblem::new(
        10,
        vec![Congruence { a: 3, b: 4, c: 5 }, Congruence { a: 1, b: 0, c: 1 }],
    );
    let combination = CombinationReward::default().score(&combination_problem, response);
    assert!(combination_problem.correct_parts(response) <= 2);
    for s in [&math, &countdown, &arith, &combination] {
        assert!((0.0..=1.0).contains(&s.reward), "{response:?}");
        assert_eq!(s.reward == 1.0, s.is_correct(), "{response:?}");
    }
    let _ = math_equal(response, reference);
    let _ = math_equal(reference, response);
    let _ = normalize_answer(response);
    let _ = extract_answer(response);
    assert!(start.elapsed() < Duration::from_secs(2), "slow on {response:?}");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..3000 {
        let response = bytes(&mut rng, 200);
        let reference = bytes(&mut rng, 20);
        check_all(&response, &reference);
        check_all(&format!("\\boxed{{{response}}}"), &reference);
    }
}

#[test]
fn latex_soup_never_panics() {
    let mut rng = StdRng::seed_from_u64(2);
    for _ in 0..6000 {
        let response = soup(&mut rng, 40);
        let reference = soup(&mut rng, 12);
        check_all(&response, &reference);
        check_all(&format!("\\boxed{{{response}}}"), &reference);
        // Grading an answer against itself must be reflexive whenever it normalises to something.
        if !normalize_answer(&reference).is_empty() {
            assert!(math_equal(&reference, &reference), "{reference:?}");
        }
    }
}

#[test]
fn adversarial_inputs_are_bounded() {
    let megabyte_text = "The answer is not yet known. ".repeat(40_000);
    let cases = [
        megabyte_text.clone(),
        format!("{megabyte_text}\\boxed{{42}}"),
        "\\boxed{".repeat(100_000),
        format!("\\boxed{{{}1{}}}", "{".repeat(10_000), "}".repeat(10_000)),
        format!("\\boxed{{{}1{}}}", "(".repeat(500), ")".repeat(500)),
        format!("\\boxed{{{}}}", "\\sqrt{".repeat(300) + &"}".repeat(300)),
        format!("\\boxed{{{}}}", "\\frac{1}{".repeat(300) + &"}".repeat(300)),
        "\\boxed{10^{10^{10}}}".into(),
        "\\boxed{10^{10^{10^{10^{10}}}}}".into(),
        "\\boxed{(10^{1000})!}".into(),
        "\\boxed{\\binom{10^{9}}{10^{8}}}".into(),
        "\\boxed{1/0}".into(),
        "\\boxed{0/0 + x}".into(),
        format!("\\boxed{{{}}}", vec!["x"; 500].join("+")),
        format!("\\boxed{{{}}}", vec!["(x+1)"; 100].join("*")),
        format!("\\boxed{{{}}}", vec!["1"; 500].join(",")),
        format!("\\boxed{{{}}}", "-".repeat(900)),
        format!("\\boxed{{{}}}", "2^".repeat(300) + "2"),
        "answer: ".repeat(100_000),
    ];
    for response in &cases {
        for reference in ["42", "10^{10^{10}}", "x", "\\frac{1}{2}", "(1, 2]"] {
            check_all(response, reference);
        }
    }
}

/// A random exact value far outside `f64`'s range, huge or tiny, in one of several spellings.
fn extreme_value(rng: &mut StdRng) -> String {
    let sign = if rng.random_bool(0.3) { "-" } else { "" };
    let mantissa = format!("{}.{}", rng.random_range(1..10), rng.random_range(0..1000));
    let value = match rng.random_range(0..7) {
        0 => format!("10^{{{}}}", rng.random_range(309..4000)),
        1 => format!("2^{{{}}}", rng.random_range(1025..13000)),
        2 => format!("{mantissa}e{}", rng.random_range(309..=400)),
        3 => format!("{mantissa}\\times 10^{{{}}}", rng.random_range(309..4000)),
        4 => format!("10^{{-{}}}", rng.random_range(309..20000)),
        5 => format!("{mantissa}e-{}", rng.random_range(324..=400)),
        _ => format!("\\frac{{1}}{{2^{{{}}}}}", rng.random_range(1075..13000)),
    };
    format!("{sign}{value}")
}

/// An ordinary number: a decimal, an integer or a fraction of modest size (zero included).
fn ordinary_value(rng: &mut StdRng) -> String {
    let sign = if rng.random_bool(0.3) { "-" } else { "" };
    let value = match rng.random_range(0..5) {
        0 => format!("{}.{}", rng.random_range(0..100_000), rng.random_range(0..1_000_000)),
        1 => rng.random_range(0..1_000_000_000u64).to_string(),
        2 => format!("0.{:06}", rng.random_range(0..1_000_000)),
        3 => format!("\\frac{{{}}}{{{}}}", rng.random_range(0..1000), rng.random_range(1..1000)),
        _ => "0".to_owned(),
    };
    format!("{sign}{value}")
}

/// Exact values beyond `f64` used to become ±∞ (or 0), and `|∞ - y| <= 1e-4 * ∞` let a decimal
/// match any huge value: `10^{400}` was `0.5`.
#[test]
fn extreme_exact_values_never_match_ordinary_numbers() {
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..3000 {
        let extreme = extreme_value(&mut rng);
        let ordinary = ordinary_value(&mut rng);
        assert!(!math_equal(&extreme, &ordinary), "{extreme} vs {ordinary}");
        assert!(!math_equal(&ordinary, &extreme), "{ordinary} vs {extreme}");
        let reward = MathReward::default();
        assert!(!reward.score_answer(&ordinary, &format!("\\boxed{{{extreme}}}")).is_correct());
        assert!(!reward.score_answer(&extreme, &format!("\\boxed{{{ordinary}}}")).is_correct());
        assert!(math_equal(&extreme, &extreme), "{extreme}");
    }
}

#[test]
fn grading_is_symmetric_on_random_answers() {
    let mut rng = StdRng::seed_from_u64(6);
    for _ in 0..6000 {
        let a = soup(&mut rng, 12);
        let b = soup(&mut rng, 12);
        assert_eq!(math_equal(&a, &b), math_equal(&b, &a), "{a:?} vs {b:?}");
    }
    // And on pairs that are often equal: an expression against a rewriting of it.
    for _ in 0..400 {
        let a = expression(&mut rng, 3);
        let b = format!("{}+0", expression(&mut rng, 2));
        for (x, y) in [(&a, &b), (&a, &format!("{a}+0")), (&a, &format!("x={a}"))] {
            assert_eq!(math_equal(x, y), math_equal(y, x), "{x:?} vs {y:?}");
        }
    }
}

/// A random expression in `x` and small integers, as LaTeX.
fn expression(rng: &mut StdRng, depth: usize) -> String {
    if depth == 0 || rng.random_bool(0.3) {
        return match rng.random_range(0..3) {
            0 => "x".into(),
            _ => rng.random_range(1..10).to_string(),
        };
    }
    let a = expression(rng, depth - 1);
    let b = expression(rng, depth - 1);
    match rng.random_range(0..5) {
        0 => format!("({a}+{b})"),
        1 => format!("({a}-{b})"),
        2 => format!("({a})({b})"),
        3 => format!("\\frac{{{a}}}{{{b}}}"),
        _ => format!("({a})^{{{}}}", rng.random_range(0..4)),
    }
}

#[test]
fn value_preserving_rewrites_are_equal_and_shifts_are_not() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut compared = 0;
    // An expression is defined when it equals itself plus zero (not, e.g., `1/(x-x)`); undefined
    // expressions equal nothing but their own text.
    let defined = |e: &str| math_equal(&format!("{e}+0"), e);
    for _ in 0..400 {
        let a = expression(&mut rng, 3);
        let b = expression(&mut rng, 3);
        if !defined(&a) || !defined(&b) {
            continue;
        }
        compared += 1;
        // Commuting a sum and a product, and adding zero, keep the value.
        assert!(math_equal(&format!("{a}+{b}"), &format!("{b}+{a}")), "{a} + {b}");
        assert!(math_equal(&format!("({a})({b})"), &format!("({b})\\cdot({a})")), "{a} * {b}");
        assert!(math_equal(&format!("{a}+x-x"), &a), "{a}");
        // Adding one changes it.
        assert!(!math_equal(&format!("{a}+1"), &a), "{a}");
    }
    assert!(compared > 200, "{compared}");
}

#[test]
fn generated_synthetic_tasks_always_verify() {
    for seed in 0..5 {
        for p in CountdownConfig::default().generate(100, seed).unwrap() {
            let trace = p.solution_trace().unwrap();
            assert!(CountdownReward::default().score(&p, &trace).is_correct(), "{p:?}");
            // Reordering the numbers in the prompt does not change solvability.
            let mut shuffled = p.clone();
            shuffled.numbers.reverse();
            assert!(shuffled.solve().is_some());
        }
        for p in ArithConfig::default().generate(100, seed).unwrap() {
            let trace = p.solution_trace().unwrap();
            assert!(ArithReward::default().score(&p, &trace).is_correct(), "{p:?}");
        }
        for p in CombinationConfig::default().generate(100, seed).unwrap() {
            let trace = p.solution_trace().unwrap();
            assert!(CombinationReward::default().score(&p, &trace).is_correct(), "{p:?}");
        }
    }
}

#[test]
fn combination_counts_the_parts_left_intact() {
    // Changing the answers of k random lines of a trace leaves exactly parts - k correct parts,
    // and the reward is 1 only when k = 0: the count an analysis of complementary candidates
    // relies on.
    let mut rng = StdRng::seed_from_u64(7);
    let cfg = CombinationConfig { parts: 6, modulus: 11, tries: 0 };
    for p in cfg.generate(300, 3).unwrap() {
        let trace = p.solution_trace().unwrap();
        let mut lines: Vec<String> = trace.lines().map(str::to_owned).collect();
        let mut wrong = 0;
        for (i, line) in lines.iter_mut().enumerate() {
            if rng.random_bool(0.3) {
                let x = p.parts[i].solution(p.modulus).unwrap();
                let other = (x + rng.random_range(1..p.modulus)) % p.modulus;
                let (work, _) = line.rsplit_once('=').unwrap();
                *line = format!("{work}={other}");
                wrong += 1;
            }
        }
        let response = lines.join("\n");
        assert_eq!(p.correct_parts(&response), cfg.parts - wrong, "{response}");
        let scored = CombinationReward::default().score(&p, &response);
        assert_eq!(scored.is_correct(), wrong == 0, "{response}");
    }
}

#[test]
fn countdown_reward_matches_exact_evaluation() {
    // For random expressions over the numbers, the reward is 1 exactly when the expression's
    // exact value (computed here independently with integers over a common denominator) is the
    // target.
    let mut rng = StdRng::seed_from_u64(4);
    let ops = ['+', '-', '*', '/'];
    for _ in 0..2000 {
        let numbers: Vec<u64> = (0..3).map(|_| rng.random_range(1..10)).collect();
        let (o1, o2) = (*ops.choose(&mut rng).unwrap(), *ops.choose(&mut rng).unwrap());
        let (a, b, c) = (numbers[0] as i128, numbers[1] as i128, numbers[2] as i128);
        // (a o1 b) o2 c as a fraction p/q.
        let (p1, q1) = apply((a, 1), o1, (b, 1));
        let (p, q) = apply((p1, q1), o2, (c, 1));
        let target = rng.random_range(1..30);
        let response = format!("\\boxed{{({}{o1}{}){o2}{}}}", numbers[0], numbers[1], numbers[2]);
        let scored =
            CountdownReward::default().score(&CountdownProblem::new(numbers, target), &response);
        let expected = q != 0 && p == target as i128 * q;
        assert_eq!(scored.is_correct(), expected, "{response} -> {target}: {:?}", scored.failure);
    }
}

/// `x op y` on fractions (q = 0 marks a division by zero, which propagates).
fn apply((p1, q1): (i128, i128), op: char, (p2, q2): (i128, i128)) -> (i128, i128) {
    if q1 == 0 || q2 == 0 {
        return (0, 0);
    }
    match op {
        '+' => (p1 * q2 + p2 * q1, q1 * q2),
        '-' => (p1 * q2 - p2 * q1, q1 * q2),
        '*' => (p1 * p2, q1 * q2),
        _ => (p1 * q2, q1 * p2),
    }
}
