//! Survey: one answer per survey, on its scale.

use crate::fixtures::*;
use sijil_domain::events::*;
use sijil_domain::*;

fn answer(score: Score, customer: CustomerStatus) -> SurveyCommand {
    SurveyCommand::Answer {
        survey_id: survey_id(1),
        customer_id: customer_id(1),
        customer,
        subject: FeedbackSubject::Case(case_id(1)),
        score,
        comment: Some("  ".into()),
        at: t(0),
    }
}

fn answered(score: Score) -> SurveyAnswered {
    SurveyAnswered {
        survey_id: survey_id(1),
        customer_id: customer_id(1),
        subject: FeedbackSubject::Case(case_id(1)),
        score,
        comment: None,
        at: t(0),
    }
}

#[test]
fn answering_a_survey() {
    let state = nothing()
        .when(answer(Score::Nps(9), CustomerStatus::Active))
        .then([answered(Score::Nps(9))]);
    assert_eq!(state.answer().map(|a| a.score), Some(Score::Nps(9)));
}

#[test]
fn a_survey_is_answered_once() {
    given([answered(Score::Csat(5))])
        .when(answer(Score::Csat(4), CustomerStatus::Active))
        .then_err("ALREADY_EXISTS");
}

#[test]
fn scores_at_the_ends_of_their_scales_are_accepted() {
    for score in [
        Score::Csat(1),
        Score::Csat(5),
        Score::Nps(0),
        Score::Nps(10),
        Score::Ces(1),
        Score::Ces(7),
    ] {
        nothing()
            .when(answer(score, CustomerStatus::Active))
            .then([answered(score)]);
    }
}

#[test]
fn a_score_outside_its_scale_is_refused() {
    for score in [
        Score::Csat(0),
        Score::Csat(6),
        Score::Nps(11),
        Score::Ces(0),
        Score::Ces(8),
    ] {
        nothing()
            .when(answer(score, CustomerStatus::Active))
            .then_err("SCORE_OUT_OF_RANGE");
    }
}

#[test]
fn answers_from_customers_who_are_not_active_are_refused() {
    nothing()
        .when(answer(Score::Ces(3), CustomerStatus::Forgotten))
        .then_err("CUSTOMER_FORGOTTEN");
    nothing()
        .when(answer(
            Score::Ces(3),
            CustomerStatus::MergedInto(customer_id(2)),
        ))
        .then_err("CUSTOMER_MERGED");
    nothing()
        .when(answer(Score::Ces(3), CustomerStatus::Unknown))
        .then_err("NOT_FOUND");
}

#[test]
fn a_comment_is_kept_trimmed() {
    let mut command = answer(Score::Csat(2), CustomerStatus::Active);
    let SurveyCommand::Answer { comment, .. } = &mut command;
    *comment = Some("  Too slow.\r\nTwo days.  ".into());
    let mut expected = answered(Score::Csat(2));
    expected.comment = Some("Too slow.\nTwo days.".into());
    nothing().when(command).then([expected]);
}
