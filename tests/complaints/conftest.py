from tests.tickets.conftest import (app_config, city, fast_password_hashing, make_bad_ticket,  # noqa: F401
                                    make_complaint_ticket)
