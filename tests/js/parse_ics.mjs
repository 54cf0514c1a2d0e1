// Reads iCalendar files with ical.js (the parser of Thunderbird's calendar) and prints, per
// event, what a calendar app would show: UTC instants, UID, SEQUENCE, summary, recurrences.
import { readFileSync } from "node:fs";
import ICAL from "ical.js";

const out = [];
for (const path of process.argv.slice(2)) {
  const root = new ICAL.Component(ICAL.parse(readFileSync(path, "utf8")));
  for (const zone of root.getAllSubcomponents("vtimezone")) {
    ICAL.TimezoneService.register(zone);
  }
  for (const vevent of root.getAllSubcomponents("vevent")) {
    const event = new ICAL.Event(vevent);
    const occurrences = [];
    if (event.isRecurring()) {
      const it = event.iterator();
      for (let next = it.next(), n = 0; next && n < 10; next = it.next(), n++) {
        occurrences.push(next.toUnixTime());
      }
    }
    out.push({
      file: path,
      method: root.getFirstPropertyValue("method"),
      uid: event.uid,
      sequence: event.sequence,
      summary: event.summary,
      description: event.description,
      location: event.location,
      status: vevent.getFirstPropertyValue("status"),
      start: event.startDate.toUnixTime(),
      end: event.endDate.toUnixTime(),
      occurrences,
    });
  }
}
process.stdout.write(JSON.stringify(out));
