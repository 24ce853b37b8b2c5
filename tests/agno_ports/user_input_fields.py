"""Tools that wait for values only the user can give.

``send_invoice`` asks the user for the recipient: every field of the schema is shown, the missing
one read with ``input()``, and each field's ``value`` written back. ``book_room`` asks for the guest
and the nights: the script answers with ``provide_user_input`` and a value for every field, the
model's own included.
"""

import os

from hitl.agent import Agent
from hitl.db.postgres import PostgresDb
from hitl.models.openai import OpenAIResponses
from hitl.tools import tool
from hitl.tools.function import UserInputField
from hitl.utils import pprint


def record(line: str) -> None:
    path = os.getenv("PORT_TOOL_LOG")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@tool(requires_user_input=True, user_input_fields=["recipient"])
def send_invoice(amount: float, currency: str, recipient: str) -> str:
    """Send an invoice.

    Args:
        amount (float): How much.
        currency (str): In which currency.
        recipient (str): Who pays it.
    """
    record(f"send_invoice {amount} {currency} {recipient}")
    return f"Invoice for {amount} {currency} sent to {recipient}"


@tool(requires_user_input=True, user_input_fields=["guest", "nights"])
def book_room(hotel: str, guest: str, nights: int) -> str:
    """Book a hotel room.

    Args:
        hotel (str): The hotel.
        guest (str): The guest's name.
        nights (int): How many nights.
    """
    record(f"book_room {hotel} {guest} {nights!r}")
    return f"{guest} stays {nights} nights at {hotel}"


agent = Agent(
    model=OpenAIResponses(id="gpt-5-mini"),
    tools=[send_invoice, book_room],
    markdown=True,
    db=PostgresDb(db_url=os.getenv("DATABASE_URL", "postgresql+psycopg://ai:ai@localhost:5532/ai")),
)

if __name__ == "__main__":
    # 1. field.value written back for every field
    run_response = agent.run("Invoice 120 EUR for the garden work")
    assert run_response.is_paused, run_response.status
    for requirement in run_response.active_requirements:
        if requirement.needs_user_input:
            input_schema: list[UserInputField] = requirement.user_input_schema
            print("fields:", [field.name for field in input_schema])
            for field in input_schema:
                print(f"\nField: {field.name}")
                print(f"Description: {field.description}")
                print(f"Type: {field.field_type}")
                if field.value is None:
                    user_value = input(f"Please enter a value for {field.name}: ")
                else:
                    print(f"Value: {field.value}")
                    user_value = field.value
                field.value = user_value

    run_response = agent.continue_run(run_id=run_response.run_id, requirements=run_response.requirements)
    pprint.pprint_run_response(run_response)
    assert not run_response.is_paused, run_response.status
    print("INVOICE:", run_response.content)
    assert "sent to Ms Okafor" in run_response.content, run_response.content

    # 2. provide_user_input with every field of the schema
    run_response = agent.run("Book me a room at the Harbour Inn")
    assert run_response.is_paused, run_response.status
    for requirement in run_response.active_requirements:
        if requirement.needs_user_input:
            values = {}
            for field in requirement.user_input_schema or []:
                if field.value is None:
                    values[field.name] = input(f"{field.name}: ")
                else:
                    values[field.name] = field.value
            print("answers:", values)
            requirement.provide_user_input(values)
    run_response = agent.continue_run(run_id=run_response.run_id, requirements=run_response.requirements)
    pprint.pprint_run_response(run_response)
    assert not run_response.is_paused, run_response.status
    print("BOOKING:", run_response.content)
    assert "Lee Park stays 3 nights at Harbour Inn" in run_response.content, run_response.content
