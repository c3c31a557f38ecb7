"""Every message schema and subject string shared by Cortex services.

Pydantic models only: no ORM, no I/O, no logic beyond validation.
"""
