"""A Bulk API 2.0 result set read line by line still gives each record whole: a quoted
value may hold commas, quotes and line breaks, and the last line may lack its ending."""

from __future__ import annotations

from app.clients.salesforce_bulk import BulkRead, _records

READ = BulkRead("Payment__c", "SELECT Id, Description__c FROM Payment__c", False,
                {"amount__c": "currency"}, "59.0", drop_id=False)


def test_quoted_line_breaks_and_a_missing_last_ending() -> None:
    text = ('"Id","Description__c","Amount__c"\n'
            '"a01","Rent, ""flat"" 2\nsecond line","12.5"\n'
            '"a02","","3"')
    records = list(_records(text, READ))
    assert [(r["Id"], r["Description__c"], r["Amount__c"]) for r in records] == [
        ("a01", 'Rent, "flat" 2\nsecond line', 12.5), ("a02", None, 3)]
