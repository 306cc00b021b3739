"""A valid brief, as a user would type it into the form: for tests and benchmarks alike (no
heavier import than a dict, so the fast tests stay fast)."""

SAMPLE_BRIEF = {
    "company": "Northwind Logistics",
    "job_title": "Head of Operations",
    "problem": "Dispatchers re-key every order into three systems.",
    "product": "RouteSync connects order intake to dispatch.",
    "benefit": "Cuts order handling time by 40%.",
    "call_to_action": "A 15-minute call next week",
}
