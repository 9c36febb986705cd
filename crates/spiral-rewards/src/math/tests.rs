//! Tests of the math verifier: extraction, normalisation and equivalence, case by case.

use super::*;

#[test]
fn normalisation_rules() {
    let cases = [
        ("\\dfrac{3}{4}", "\\frac{3}{4}"),
        ("\\tfrac{3}{4}", "0.75"),
        ("\\frac34", "\\frac{3}{4}"),
        ("\\left(1, 2\\right)", "(1, 2)"),
        ("\\text{5}", "5"),
        ("5 \\text{ cm}", "5"),
        ("12 inches", "12"),
        ("90^\\circ", "90"),
        ("90^{\\circ}", "90"),
        ("\\$5", "5"),
        ("1,000,000", "1000000"),
        ("50\\%", "50"),
        ("  3 ", "3"),
        ("x = 5", "5"),
        ("\\text{(B)}", "B"),
        ("(B)", "B"),
        ("(b) 17", "B"),
    ];
    for (pred, gold) in cases {
        assert!(math_equal(pred, gold), "{pred} vs {gold}");
    }
    // Percent against a decimal depends on the percent mode.
    assert!(math_equal("0.5", "50\\%"));
    assert!(!math_equal_with("0.5", "50\\%", PercentMode::Strict));
    assert!(!math_equal("C", "B"));
}

#[test]
fn equivalence_rules() {
    let equal = [
        ("123456789012345678901234567890", "123456789012345678901234567890"),
        ("0.25", "\\frac{1}{4}"),
        ("\\frac{2}{4}", "\\frac{1}{2}"),
        ("3.14159", "\\pi"),
        ("(1, 2, 3)", "(1,2,3)"),
        ("[0, 1)", "[0,1)"),
        ("\\{3, 1, 2\\}", "\\{1, 2, 3\\}"),
        ("\\infty", "\\infty"),
        ("-\\infty", "-\\infty"),
        ("x^2+2x+1", "(x+1)^2"),
        ("\\sqrt{12}", "2\\sqrt{3}"),
        ("2^{10}", "1024"),
        ("\\pi r^2", "r^2\\pi"),
        ("\\frac{\\sqrt{3}}{2}", "\\sin(\\pi/3)"),
        ("1/2", "\\frac{1}{2}"),
        ("-\\frac{1}{2}", "\\frac{-1}{2}"),
        ("2\\frac{1}{2}", "\\frac{5}{2}"),
        ("\\sqrt[3]{x}", "x^{1/3}"),
    ];
    for (pred, gold) in equal {
        assert!(math_equal(pred, gold), "{pred} vs {gold}");
    }
    let different = [
        ("123456789012345678901234567891", "123456789012345678901234567890"),
        ("3.14", "\\pi"),
        ("(1, 2, 3)", "(1, 3, 2)"),
        ("(0, 1)", "[0, 1)"),
        ("\\{1, 2\\}", "\\{1, 2, 3\\}"),
        ("\\infty", "-\\infty"),
        ("x^2+2x+1", "(x+1)^3"),
        ("2", "3"),
        ("", "3"),
        ("3", ""),
        ("x", "y"),
    ];
    for (pred, gold) in different {
        assert!(!math_equal(pred, gold), "{pred} vs {gold}");
    }
}

/// Pairs from the Qwen2.5-Math and Math-Verify test suites and from model outputs.
#[test]
fn reference_grader_regressions() {
    let cases = [
        ("\\frac{\\sqrt{3}}{2}", "\\dfrac{\\sqrt3}{2}", true),
        ("10\\sqrt{2}", "\\sqrt{200}", true),
        ("\\frac{1}{2}\\pi", "\\frac{\\pi}{2}", true),
        ("2, -1", "x = 2, x = -1", true),
        ("\\{1, 2\\}", "1, 2", true),
        ("(-\\infty, 3) \\cup (5, \\infty)", "(-\\infty,3)\\cup(5,\\infty)", true),
        ("\\$18.90", "18.9", true),
        ("18.90", "18.9", true),
        ("3\\sqrt{2}", "3 \\sqrt 2", true),
        ("\\text{Evelyn}", "Evelyn", true),
        ("5", "5.0", true),
        ("1/3", "0.33", false),
        ("\\frac{9}{4}\\pi", "\\frac94\\pi", true),
        ("\\sqrt{2}+\\sqrt{5}", "\\sqrt 2+\\sqrt 5", true),
        ("\\tan^2(y)+1", "\\sec^2(y)", true),
        ("\\frac{x+2}{7}", "\\frac{x}{7}+\\frac{2}{7}", true),
        ("(1,\\frac{9}{2})", "(1,4.5)", true),
        ("\\frac{1}{12}", "0.0833333333333333", true),
        ("204_5", "204_5", true),
        ("f(2) < f(1) < f(4)", "f(2)<f(1)<f(4)", true),
        ("2 \\sin b \\cos a", "2\\cos a\\sin b", true),
        ("125 miles", "125", true),
        (
            "[-1, -\\frac{1}{2}) \\cup (-\\frac{1}{2}, 0)",
            "[-1, -\\tfrac12) \\cup (-\\tfrac12, 0)",
            true,
        ),
        ("16386.20", "\\$16,\\!386.20", true),
        ("12000023", "12,\\!000,\\!023", true),
        ("14{,}916", "14916", true),
        ("\\frac{14}{3}", "4\\frac{2}{3}", true),
        ("6.25", "6\\frac14", true),
        ("x \\in [-2,7]", "[-2,7]", true),
        ("\\pi", "180^\\circ", false),
        ("-\\frac{2}{3}", "\\frac{-2}{3}", true),
        ("\\frac{-2}{3}", "-\\frac23", true),
        ("0.\\overline{3}", "\\frac13", false),
        ("3 + 4i", "4i + 3", true),
        ("e^{i\\pi}", "-1", true),
        ("a", "A", true),
        ("\\textbf{(C)}", "C", true),
        // Symmetric with `\text{(B) } 5` against `B`: the reference picks choice C.
        ("C", "\\textbf{(C) }12", true),
        ("D", "\\textbf{(C) }12", false),
        ("k=1", "1", true),
        ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}", true),
        ("y = -\\frac{1}{2}x + 3", "y=-0.5x+3", true),
        ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}", true),
        ("1.5", "\\frac32", true),
        ("\\log_2 8", "3", true),
        ("\\ln(e^2)", "2", true),
        ("xy", "yx", true),
        ("2^{100}", "1267650600228229401496703205376", true),
        ("2^{100}", "1267650600228229401496703205377", false),
    ];
    for (a, b, want) in cases {
        assert_eq!(math_equal(a, b), want, "{a} vs {b}");
    }
}

/// Values beyond `f64`'s range were converted to ∞, and `|∞ - y| <= 1e-4 * ∞` held: any
/// decimal matched any huge exact value.
#[test]
fn huge_and_tiny_exact_values_are_not_close_to_everything() {
    let different = [
        ("10^{400}", "0.5"),
        ("2^{2000}", "0.5"),
        ("1e309", "5"),
        ("1.0\\times 10^{400}", "7"),
        ("1.5", "10^{400}"),
        ("-10^{400}", "0.5"),
        ("10^{400}", "10^{400} + 0.5 \\cdot 10^{397}"),
        ("10^{400}", "\\pi"),
        ("10^{5000}", "0.5"),
        ("e^{1000}", "0.5"),
        // Tiny exact values are not 0: exact rationals have no absolute tolerance.
        ("10^{-16000}", "0"),
        ("10^{-16000}", "0.0"),
        ("2^{-2000}", "0"),
        ("1e-400", "0"),
        ("10^{-20}", "0.0"),
        ("e^{-1000}", "0"),
        ("10^{-16000}", "10^{-16001}"),
    ];
    for (a, b) in different {
        assert!(!math_equal(a, b), "{a} vs {b}");
        assert!(!math_equal(b, a), "{b} vs {a}");
    }
    let equal = [
        ("10^{400}", "1e400"),
        ("1.0\\times 10^{400}", "10^{400}"),
        ("1.00001 \\cdot 10^{400}", "10^{400}"),
        ("2^{-2000}", "2^{-2000}"),
        ("10^{-16000}", "10^{-16000}"),
        ("0.3333", "\\frac{1}{3}"),
    ];
    for (a, b) in equal {
        assert!(math_equal(a, b), "{a} vs {b}");
    }
    assert!(!math_equal("1.0002 \\cdot 10^{400}", "10^{400}"));
}

#[test]
fn plain_braces_group_a_list() {
    for (a, b) in [
        ("{1,2}", "{2,1}"),
        ("{1,2}", "1,2"),
        ("{1, 2}", "2, 1"),
        ("\\{1,2\\}", "{1,2}"),
        ("\\{1,2\\}", "{2, 1}"),
        ("{5}", "5"),
        ("{x}^{2}", "x^2"),
        ("x^{2}", "x^2"),
        ("{(1, 2), (3, 4)}", "\\{(3, 4), (1, 2)\\}"),
        // Plain braces are grouping around a bare list, which matches a tuple in order.
        ("{1,2}", "(1,2)"),
    ] {
        assert!(math_equal(a, b), "{a} vs {b}");
    }
    for (a, b) in [("{1,2}", "{1,3}"), ("{1,2}", "(2,1)"), ("{1,2}", "{1,2,3}"), ("{5}", "6")] {
        assert!(!math_equal(a, b), "{a} vs {b}");
    }
    let scored = MathReward::default().score_answer("\\{1,2\\}", "so \\boxed{{2,1}}");
    assert!(scored.is_correct(), "{scored:?}");
}

#[test]
fn bare_lists_match_tuples_in_order() {
    for (a, b) in [
        ("3, 4", "(3, 4)"),
        ("(3, 4)", "3, 4"),
        ("3, 4", "[3, 4]"),
        ("x=5, y=6", "(5,6)"),
        ("(5, 6)", "x = 5, y = 6"),
        ("1, 2, 3", "(1, 2, 3)"),
        ("\\frac12, 3", "(0.5, 3)"),
    ] {
        assert!(math_equal(a, b), "{a} vs {b}");
    }
    for (a, b) in [
        ("3, 4", "(4, 3)"),
        ("x=6, y=5", "(5,6)"),
        ("1, 2", "(1, 2, 3)"),
        ("1, 2, 3", "(1, 2)"),
        ("(1, 2)", "\\{1, 2\\}"),
    ] {
        assert!(!math_equal(a, b), "{a} vs {b}");
    }
    // Against sets and other bare lists a bare list stays unordered.
    assert!(math_equal("2, 1", "\\{1, 2\\}"));
    assert!(math_equal("2, 1", "1, 2"));
}

/// `\text{(B) } 5` against `B` was true and `B` against `\text{(B) } 5` false.
#[test]
fn grading_is_symmetric() {
    let answers = [
        "\\text{(B) } 5",
        "B",
        "(B)",
        "(b) 17",
        "C",
        "\\textbf{(C) }12",
        "b",
        "x",
        "5",
        "x = 5",
        "y = 5",
        "5.0",
        "\\frac{1}{2}",
        "0.5",
        "0.50001",
        "1, 2",
        "2, 1",
        "(1, 2)",
        "[1, 2]",
        "\\{1, 2\\}",
        "{2, 1}",
        "x > 3",
        "(3, \\infty)",
        "y = 2x + 1",
        "2x - y + 1 = 0",
        "\\pm 2",
        "2, -2",
        "\\sqrt{2}",
        "1.41421",
        "10^{400}",
        "1e400",
        "0",
        "10^{-16000}",
        "\\text{Monday}",
        "monday",
        "\\emptyset",
        "\\{\\}",
    ];
    for a in answers {
        for b in answers {
            assert_eq!(math_equal(a, b), math_equal(b, a), "{a} vs {b}");
        }
    }
    assert!(math_equal("\\text{(B) } 5", "B") && math_equal("B", "\\text{(B) } 5"));
    assert!(!math_equal("b", "\\text{(B) } 5"), "a lower-case letter may be a variable");
}

#[test]
fn single_numbers() {
    let n = |s: &str| parse_number(s).map(|v| v.to_string());
    assert_eq!(n("28"), Some("28".into()));
    assert_eq!(n("-3.5"), Some("-7/2".into()));
    assert_eq!(n("$1,000$"), Some("1000".into()));
    assert_eq!(n("28 \\text{ apples}"), None);
    assert_eq!(n("28 apples"), None);
    assert_eq!(n("28 dollars"), Some("28".into()));
    assert_eq!(n("7*4"), None);
    assert_eq!(n("x"), None);
    assert_eq!(n(""), None);
}

#[test]
fn reward_extracts_then_grades() {
    let r = MathReward { format_score: 0.1, ..MathReward::default() };
    let p = MathProblem::new("q", "\\frac{1}{2}");
    assert_eq!(r.score(&p, "so \\boxed{0.5}").reward, 1.0);
    let wrong = r.score(&p, "so \\boxed{0.6}");
    assert_eq!((wrong.reward, wrong.failure), (0.1, Some(Failure::WrongAnswer)));
    let none = r.score(&p, "no idea");
    assert_eq!((none.reward, none.extracted), (0.0, None));
    let long = format!("\\boxed{{{}}}", "1".repeat(5000));
    let s = r.score(&p, &long);
    assert!(matches!(s.failure, Some(Failure::AnswerTooLong { bytes: 5000, .. })));
    assert_eq!(s.extracted.map(|e| e.len()), Some(MAX_ANSWER_BYTES));
}

/// Grades `response` against `reference` with the default reward.
fn grade(reference: &str, response: &str) -> bool {
    MathReward::default().score_answer(reference, response).is_correct()
}

#[test]
fn answers_in_prose_are_found() {
    let cases = [
        ("so the bill came to 2,315.40 euros", "2315.40"),
        ("Answer \\[ 17 \\]", "17"),
        ("Answer $ \\frac{3}{8} $", "0.375"),
        ("Thus $y \\le 4$ holds.", "y \\le 4"),
        (
            "The rotation is $ \\begin{pmatrix}0 & -1 \\\\ 1 & 0\\end{pmatrix} $.",
            "\\begin{bmatrix}0 & -1 \\\\ 1 & 0\\end{bmatrix}",
        ),
        ("the chance that Bo wins is 5/9. <|im_end|>", "\\frac59"),
        ("Prices rose by 35 percent", "35\\%"),
        ("Final Answer: The smallest $k$ is 41.", "41"),
        ("Final Answer: Ana needs 6 more boxes. I hope it is correct.", "6"),
        (
            "so \\boxed{40} first. Final Answer: The final answer is $7{,}250$. I hope it is correct.",
            "7250",
        ),
    ];
    for (response, reference) in cases {
        assert!(grade(reference, response), "{response} vs {reference}");
    }
    // Inline math may not span lines, and a number glued into a word is not a number.
    assert!(!grade("8", "Answer $ \n 8 \n $"));
    assert!(!grade("4", "code QX4B"));
}

#[test]
fn several_boxed_answers_form_a_set_against_a_collection() {
    assert!(grade("\\{2, 5\\}", "roots \\boxed{5} and \\boxed{2}"));
    assert!(grade(
        "(1, 4), (4, 1)",
        "$$\\boxed{(4, 1)} \\quad \\text{or} \\quad \\boxed{(1, 4)}$$"
    ));
    assert!(grade("a = 3, b = 7", "\\boxed{a = 3}, \\boxed{b = 7}"));
    // Against a single value only the last box counts.
    assert!(!grade("2", "\\boxed{2} and \\boxed{5}"));
    // A missing or extra element is still wrong, and boxes far apart are not one answer.
    assert!(!grade("\\{2, 5, 6\\}", "\\boxed{5} and \\boxed{2}"));
    assert!(!grade("2, 5", "first \\boxed{2}.\nLater we see it is wrong: \\boxed{5}"));
}

#[test]
fn labels_before_the_value_are_dropped() {
    for (a, b) in [
        ("(4,9)", "(m,n)=(4,9)"),
        ("(1,0,2)", "(a,b,c)=(1,0,2)"),
        ("3", "g(t)=3"),
        ("5", "|PQ|=5"),
        ("2", "\\frac{AM}{MB}=2"),
        ("3:5", "S_{ABC}:S_{XYZ}=3:5"),
        ("6, 8", "PQ=6,RS=8"),
        ("(2,3),(5,3)", "m=2,n=3;m=5,n=3"),
    ] {
        assert!(math_equal(a, b), "{a} vs {b}");
    }
    // An expression or a number on the left is no label.
    for (a, b) in
        [("5a+b", "9 = 5a+b"), ("0", "p + 2q = 0"), ("4", "3y + w = 4"), ("1", "c^3 + d = 1")]
    {
        assert!(!math_equal(a, b), "{a} vs {b}");
    }
    // Two labelled answers compare as equations.
    assert!(!math_equal("x = 4", "y = 4"));
}

#[test]
fn inequalities_and_intervals_are_one_kind() {
    for (a, b) in [
        ("-y > -3", "y < 3"),
        ("-y >= -3", "y \\le 3"),
        ("3 - t \\le 1", "t \\ge 2"),
        ("t \\in [-1, 6]", "-1 \\le t \\le 6"),
        ("(2, 5)", "2 < g(x) < 5"),
        ("x \\geq 7", "x >= 7"),
        ("a \\neq 2", "a != 2"),
        ("a \\ne 2", "(-\\infty, 2) \\cup (2, \\infty)"),
    ] {
        assert!(math_equal(a, b), "{a} vs {b}");
    }
    for (a, b) in
        [("-y > -3", "y > 3"), ("y > -3", "y < 3"), ("x \\ge 7", "x > 7"), ("a \\ne 2", "a \\ne 3")]
    {
        assert!(!math_equal(a, b), "{a} vs {b}");
    }
}

#[test]
fn number_formats() {
    for (a, b) in [
        ("2500,75", "2500.75"),
        ("3.45", "3,45"),
        ("0,625", "0.625"),
        ("22,\\! 333,\\! 444", "22333444"),
        ("48 {, }102", "48102"),
    ] {
        assert!(math_equal(a, b), "{a} vs {b}");
    }
    // A comma and a space separate items; a comma between integers is a list against a list.
    assert!(!math_equal("48, 102", "48102"));
    assert!(!math_equal("3,45", "3.46"));
    assert!(math_equal("3,4", "4,3"));
}

#[test]
fn sets_tuples_and_lists_keep_the_reference_order_semantics() {
    assert!(grade("(2,7)", "\\boxed{{2,7}}"));
    assert!(!grade("(7,2)", "\\boxed{{2,7}}"));
    assert!(math_equal("\\{-3, -1, 4\\}", "-3;-1;4"));
    assert!(math_equal("(1, 0, 2), (3, 1, 1)", "(3;1;1),(1;0;2)"));
    assert!(math_equal("(1,5),\\ (5,1)", "(5,1)or(1,5)"));
    assert!(math_equal("(a, b) = (2, 9) \\text{ and } (9, 2)", "(2, 9), (9, 2)"));
    assert!(!math_equal("(1, 0, 2), (3, 1, 1)", "(3;1;1),(2;0;1)"));
}

#[test]
fn approximations_and_percentages() {
    assert!(math_equal("y \\approx 7", "7"));
    assert!(math_equal("y = 2/7 \\approx 0.3", "2/7"));
    assert!(math_equal("y = 1+1 = 2/7 \\approx 5", "y = 2/7"));
    assert!(!math_equal("y = 2/7 \\approx 0.3", "0.3"));
    assert!(math_equal("45 pct", "45\\%"));
    assert!(math_equal("45 percentage", "45\\%"));
    assert!(math_equal("45\\%", "0.45"));
    assert!(math_equal("45%", "45"));
    // Only a marked side is rescaled, and the strict mode never rescales.
    assert!(!math_equal("45", "0.45"));
    assert!(!math_equal("45\\%", "0.46"));
    let strict = MathReward { percent: PercentMode::Strict, ..MathReward::default() };
    assert!(!strict.score_answer("0.45", "\\boxed{45\\%}").is_correct());
    assert!(strict.score_answer("45", "\\boxed{45\\%}").is_correct());
}

#[test]
fn looser_rules_do_not_accept_wrong_answers() {
    for (a, b) in [
        ("1+\\frac{1}{e}", "1-\\frac{1}{e}"),
        ("1 + \\frac{1}{\\mathrm{e}}", "1 - \\frac{1}{\\mathrm{e}}"),
        ("2", "\\pm 2"),
        ("f(y)", "f(x)"),
        ("2:00", "11:00"),
        ("x \\in [1, 4]", "x \\in [1, 5]"),
        ("\\frac12 = \\frac{10}{20}", "\\frac{1}{3}"),
    ] {
        assert!(!math_equal(a, b), "{a} vs {b}");
        assert!(!math_equal(b, a), "{b} vs {a}");
    }
    assert!(math_equal("\\frac12 = \\frac{10}{20}", "0.5"));
    // A reference escaped twice is read once; a response is not unescaped unless its box is.
    assert!(grade("\\\\left(\\\\frac{1}{4}, 2\\\\right)", "\\boxed{\\left(\\frac14, 2\\right)}"));
    assert!(grade("(1, 2)", "so \\\\boxed{\\\\left( 1, 2 \\\\right)}"));
    assert!(!grade("x \\in [-1,3]", "\\boxed{-1 \\\\le x \\\\le 3}"));
}

#[test]
fn new_extraction_paths_are_bounded() {
    let start = std::time::Instant::now();
    for unit in
        ["answer: x ", "final answer is $", "\\[ 1 ", "$ 1 \n", "\\boxed{1} and ", "Answer \\( "]
    {
        let text = unit.repeat(200_000 / unit.len());
        let _ = MathReward::default().score_answer("1, 2", &text);
    }
    assert!(start.elapsed().as_secs_f64() < 5.0, "took {:?}", start.elapsed());
}

#[test]
fn adversarial_answers_are_bounded() {
    let start = std::time::Instant::now();
    let nested = format!("{}1{}", "{".repeat(400), "}".repeat(400));
    assert!(!math_equal(&nested, "2"));
    assert!(math_equal(&nested, &nested));
    assert!(!math_equal("10^{10^{10}}", "10^{10^{10}} + 1"));
    assert!(math_equal("10^{10^{10}}", "10^{10^{10}}"));
    assert!(!math_equal("10^{10^{10}}", "\\infty"));
    assert!(!math_equal("2^{2^{2^{2^{2^{2^{2}}}}}}", "0"));
    assert!(!math_equal("1/0", "\\infty"));
    assert!(!math_equal("\\frac{1}{0}", "1"));
    assert!(!math_equal("0/0", "0"));
    assert!(!math_equal("(1-1)^{-1}", "1"));
    assert!(!math_equal("99999!", "1"));
    assert!(!math_equal("\\binom{100000}{50000}", "1"));
    assert!(!math_equal(&format!("{}1", "x+".repeat(300)), "1"));
    assert!(!math_equal(&"(".repeat(500), "1"));
    assert!(!math_equal(&"\\sqrt{".repeat(200), "1"));
    assert!(start.elapsed().as_secs_f64() < 2.0, "took {:?}", start.elapsed());
}
