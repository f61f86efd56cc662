"""The demo's vocabulary, as workers/demo/conversation.ts has it: topics, state names, the texts."""
import re

TOPICS = {"requests": "jarvis.requests", "replies": "tony.replies"}
STATE = {"conversation": "conversation", "asked": "tony.asked", "sent": "sent", "replied": "replied", "duplicates": "duplicates"}

QUESTIONS = [
    "how is the suit holding up?",
    "run a diagnostic on the arc reactor.",
    "what is the weather over Malibu?",
    "any messages from Pepper?",
    "prepare the Mark 42.",
    "how many consumers are in the group?",
    "is the broker healthy?",
]


def question(n: int) -> str:
    return f"Jarvis, {QUESTIONS[(n - 1) % len(QUESTIONS)]} (#{n})"


def answer(text: str) -> str:
    text = re.sub(r"^Jarvis, ", "", text)
    text = re.sub(r"\?|\.(?= \(#)", "", text, count=1)
    return f"Yes, Tony: {text} — done."
