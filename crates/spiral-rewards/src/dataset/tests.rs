//! Tests of JSONL datasets: fields, dotted paths, conversations, splits and errors.

use super::*;

fn read(task: Task, text: &str) -> Result<Vec<Problem>, RewardError> {
    read_jsonl(text.as_bytes(), "data.jsonl", task, &FieldNames::for_task(task))
}

#[test]
fn reads_each_task() {
    let math = read(
        Task::Math,
        "{\"problem\": \"1+1?\", \"answer\": \"2\"}\n\n{\"problem\": \"x\", \"answer\": 3.5}\n",
    )
    .unwrap();
    assert_eq!(math.len(), 2);
    assert_eq!(math[1].reference(), "3.5");
    let cd = read(
        Task::Countdown,
        "{\"nums\": [75, 25, 2], \"target\": 100}\n{\"nums\": \"3, 4\", \"target\": \"12\"}",
    )
    .unwrap();
    assert_eq!(cd[1], Problem::Countdown(CountdownProblem::new(vec![3, 4], 12)));
    let ar = read(Task::Arith, "{\"problem\": \"2+3\", \"answer\": 5}").unwrap();
    assert_eq!(ar[0].solution_trace().unwrap(), "2+3=5\n\\boxed{5}");
    let co = read(
        Task::Combination,
        "{\"problem\": \"3x+4=5 (mod 10)\\n7x+1=2 (mod 10)\", \"answer\": [7, 3]}\n\
         {\"problem\": \"3x+4=5 (mod 10); 7x+1=2 (mod 10)\", \"answer\": \"7, 3\"}",
    )
    .unwrap();
    assert_eq!(co[0], co[1]);
    assert_eq!(co[0].reference(), "x1=7 x2=3");
    assert_eq!(co[0].solution_trace().unwrap(), "3*7+4=25=5 x1=7\n7*3+1=22=2 x2=3");
}

#[test]
fn combination_problems_round_trip_through_jsonl() {
    let problems = crate::CombinationConfig::default().generate(50, 8).unwrap();
    let text: String = problems
        .iter()
        .map(|p| {
            let answers: Vec<u32> = p.solutions().into_iter().flatten().collect();
            let line = serde_json::json!({
                "problem": p.prompt(crate::PromptStyle::Compact),
                "answer": answers,
            });
            format!("{line}\n")
        })
        .collect();
    let read_back = read(Task::Combination, &text).unwrap();
    let expected: Vec<Problem> = problems.into_iter().map(Problem::from).collect();
    assert_eq!(read_back, expected);
}

#[test]
fn dotted_fields_and_conversations_in_jsonl() {
    let fields =
        FieldNames { problem: "prompt".into(), answer: "reward_model.ground_truth".into() };
    let text = "{\"prompt\": [{\"role\": \"user\", \"content\": \"2+2?\"}], \
                \"reward_model\": {\"ground_truth\": 4.50, \"style\": \"rule\"}}\n\
                {\"prompt\": \"3+3?\", \"reward_model\": {\"ground_truth\": \"6\"}}";
    let p = read_jsonl(text.as_bytes(), "verl.jsonl", Task::Math, &fields).unwrap();
    assert_eq!(p[0].prompt(Default::default()), "2+2?");
    // A nested number is still read as written.
    assert_eq!((p[0].reference(), p[1].reference()), ("4.50".into(), "6".into()));
    let by_index = FieldNames { problem: "prompt.0.content".into(), answer: "a".into() };
    let text = "{\"prompt\": [{\"role\": \"user\", \"content\": \"q\"}], \"a\": 1}";
    let p = read_jsonl(text.as_bytes(), "x.jsonl", Task::Math, &by_index).unwrap();
    assert_eq!(p[0].prompt(Default::default()), "q");
    // A key containing a dot is found as it is before any path is tried.
    let dotted = FieldNames { problem: "q.text".into(), answer: "a".into() };
    let text = "{\"q.text\": \"literal\", \"q\": {\"text\": \"nested\"}, \"a\": 1}";
    let p = read_jsonl(text.as_bytes(), "x.jsonl", Task::Math, &dotted).unwrap();
    assert_eq!(p[0].prompt(Default::default()), "literal");

    let text = "{\"prompt\": [{\"role\": \"system\", \"content\": \"s\"}, \
                {\"role\": \"user\", \"content\": \"q\"}], \"reward_model\": {\"ground_truth\": 1}}";
    let e = read_jsonl(text.as_bytes(), "v.jsonl", Task::Math, &fields).unwrap_err();
    assert_eq!(
        e.to_string(),
        "v.jsonl:1: field `prompt` holds a conversation with roles [\"system\", \"user\"]; \
         only one user message can be a problem's question"
    );
    let text = "{\"prompt\": \"q\", \"reward_model\": {}}";
    let e = read_jsonl(text.as_bytes(), "v.jsonl", Task::Math, &fields).unwrap_err();
    assert_eq!(e.to_string(), "v.jsonl:1: missing field `reward_model.ground_truth`");
}

#[test]
fn custom_fields_bom_and_gsm8k_answers() {
    let fields = FieldNames { problem: "question".into(), answer: "solution".into() };
    let text = "\u{feff}{\"question\": \"q\", \"solution\": \"work\\n#### 1,234\"}";
    let p = read_jsonl(text.as_bytes(), "gsm.jsonl", Task::Math, &fields).unwrap();
    assert_eq!(p[0].reference(), "1,234");
}

#[test]
fn errors_name_file_line_and_field() {
    let err = |task, text: &str| read(task, text).unwrap_err().to_string();
    assert_eq!(err(Task::Math, "{\"problem\": \"q\"}"), "data.jsonl:1: missing field `answer`");
    assert_eq!(
        err(Task::Math, "{\"problem\": \"q\", \"answer\": \"1\"}\n\nnot json"),
        "data.jsonl:3: invalid JSON: expected ident at line 1 column 2"
    );
    assert!(err(Task::Math, "[1]").contains("expected a JSON object, got an array"));
    assert!(
        err(Task::Math, "{\"problem\": 5, \"answer\": \"1\"}")
            .contains("`problem` must be a string")
    );
    assert!(
        err(Task::Math, "{\"problem\": \"q\", \"answer\": null}").contains("string or a number")
    );
    assert!(err(Task::Countdown, "{\"nums\": [1, -2], \"target\": 3}").contains("`nums`"));
    assert!(err(Task::Countdown, "{\"nums\": [], \"target\": 3}").contains("non-empty"));
    assert!(err(Task::Countdown, "{\"nums\": [1], \"target\": -3}").contains("`target`"));
    assert!(
        err(Task::Arith, "{\"problem\": \"1+1\", \"answer\": \"two\"}")
            .contains("`answer` must be an integer")
    );
    let co = |problem: &str, answer: &str| {
        err(Task::Combination, &format!("{{\"problem\": \"{problem}\", \"answer\": {answer}}}"))
    };
    assert_eq!(
        co("3x+4=5 (mod 10)", "[8]"),
        "data.jsonl:1: field `answer` must hold the solutions of the congruences in order, \
         [7], got [8]"
    );
    assert!(co("3x+4=5 (mod 10)", "[7, 1]").contains("got [7, 1]"));
    assert!(co("3x+4=5 (mod 10)", "[-7]").contains("`answer` must be a non-empty array"));
    assert!(co("3x+4=5", "[7]").contains("field `problem`: `3x+4=5` is not a congruence"));
    assert!(co("2x+4=6 (mod 10)", "[1]").contains("exactly one solution"));
    assert!(err(Task::Combination, "{\"answer\": [7]}").contains("missing field `problem`"));
    let e = load_jsonl("/nonexistent/x.jsonl", Task::Math, &FieldNames::for_task(Task::Math));
    assert!(e.unwrap_err().to_string().starts_with("cannot read /nonexistent/x.jsonl"));
}

/// Numbers beyond `u64` became `f64` and printed as `1.2345678901234568e29`, which matched
/// `...891` within the decimal tolerance.
#[test]
fn numeric_references_keep_every_digit() {
    let text = [
        "{\"problem\": \"q\", \"answer\": 123456789012345678901234567890}",
        "{\"problem\": \"q\", \"answer\": 1.50}",
        "{\"problem\": \"q\", \"answer\": 0.1000000000000000000001}",
        "{\"problem\": \"q\", \"answer\": -123456789012345678901234567890}",
        "{\"problem\": \"q\", \"answer\": 18446744073709551615}",
        "{\"problem\": \"q\", \"answer\": -7}",
        "{\"problem\": \"q\", \"answer\": 1, \"answer\": 2.50}",
    ];
    let math = read(Task::Math, &text.join("\n")).unwrap();
    let refs: Vec<String> = math.iter().map(|p| p.reference().to_owned()).collect();
    assert_eq!(
        refs,
        [
            "123456789012345678901234567890",
            "1.50",
            "0.1000000000000000000001",
            "-123456789012345678901234567890",
            "18446744073709551615",
            "-7",
            "2.50",
        ]
    );
    let reward = crate::MathReward::default();
    let wrong = "\\boxed{123456789012345678901234567891}";
    assert!(!reward.score_answer(&refs[0], wrong).is_correct());
    assert!(reward.score_answer(&refs[0], &wrong.replace("891", "890")).is_correct());
    // serde_json refuses numbers beyond `f64` outright (before the text could be read).
    let err = read(Task::Math, "{\"problem\": \"q\", \"answer\": 1e400}").unwrap_err();
    assert!(err.to_string().starts_with("data.jsonl:1: invalid JSON"), "{err}");
}

#[test]
fn invalid_utf8_is_a_line_error() {
    let bytes: &[u8] = b"{\"problem\": \"q\", \"answer\": \"1\"}\n\xff\xfe\n";
    let e = read_jsonl(bytes, "bin.jsonl", Task::Math, &FieldNames::for_task(Task::Math));
    assert!(e.unwrap_err().to_string().starts_with("bin.jsonl:2: cannot read"));
}

#[test]
fn dedup_keeps_first_occurrences() {
    let mut ps: Vec<Problem> = ["a", "b", "a", " a ", "c", "b"]
        .iter()
        .map(|q| Problem::from(MathProblem::new(*q, "1")))
        .collect();
    assert_eq!(dedup(&mut ps), 3);
    let qs: Vec<String> = ps.iter().map(|p| p.prompt(Default::default())).collect();
    assert_eq!(qs, ["a", "b", "c"]);
}

#[test]
fn split_is_seeded_disjoint_and_ordered() {
    let s = split((0..100).collect::<Vec<_>>(), 0.2, 1).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (80, 20));
    assert!(s.test.windows(2).all(|w| w[0] < w[1]));
    assert!(s.test.iter().all(|t| !s.train.contains(t)));
    assert_ne!(s.test, split((0..100).collect(), 0.2, 2).unwrap().test);
    assert_eq!(split(Vec::<u8>::new(), 0.5, 0).unwrap().test.len(), 0);
    assert_eq!(split(vec![1, 2], 1.0, 0).unwrap().train.len(), 0);
    assert!(split(vec![1], 1.5, 0).is_err());
    assert!(split(vec![1], f64::NAN, 0).is_err());
}
