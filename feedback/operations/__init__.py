"""Operations: the record of scheduled job runs."""
