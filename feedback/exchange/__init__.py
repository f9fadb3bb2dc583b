"""The exchange (数据全汇聚): a ledger of every reportable event and its delivery to the province."""
