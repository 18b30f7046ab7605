"""Checks a recipe's data and model before a long run: `python -m dlkeras.check`.

Each check returns a `Result`: its status ("pass", "warn", "fail" or "skip"), one line for
the verdict table, the numbers behind it and, when it does not pass, advice in the words of
the usual training checklist. `preflight.run_checks` runs them on the real recipe and model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

STATUS_MARKS = {"pass": "ok", "warn": "WARN", "fail": "FAIL", "skip": "skip"}


@dataclass
class Result:
    """One check's verdict."""

    name: str
    status: str
    summary: str
    advice: str = ""
    numbers: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"name": self.name, "status": self.status, "summary": self.summary,
                "advice": self.advice, "numbers": self.numbers, "seconds": round(self.seconds, 2)}


def table(results) -> str:
    """The verdict table, then the advice of every check that did not pass."""
    lines = [f"{'check':22s} {'status':6s} {'seconds':>7s}  verdict"]
    lines += [f"{r.name:22s} {STATUS_MARKS[r.status]:6s} {r.seconds:7.1f}  {r.summary}"
              for r in results]
    advice = [f"- {r.name}: {r.advice}" for r in results if r.advice and r.status != "pass"]
    failed = sum(r.status == "fail" for r in results)
    verdict = f"{failed} check(s) failed" if failed else "no check failed"
    return "\n".join(lines + ([""] + advice if advice else []) + ["", verdict])
