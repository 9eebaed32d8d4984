//! Given/when/then scenarios for every aggregate: each command accepted, and refused once per
//! rule; plus validation and error-code tests.

mod fixtures;

mod agent;
mod case;
mod customer;
mod errors;
mod follow_up;
mod interaction;
mod survey;
mod validation;
