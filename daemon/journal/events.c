#include "journal/events.h"

#include <string.h>

static const struct {
	const char *name, *phase, *meaning;
} events[] = {
#define PV_X(id, name, phase, meaning) {name, phase, meaning},
    PV_JOURNAL_EVENTS(PV_X)
#undef PV_X
};

const char *pv_journal_event_name(PvJournalEvent e)
{
	return (e >= 0 && e < PV_EV_COUNT) ? events[e].name : "invalid";
}

const char *pv_journal_event_phase(PvJournalEvent e)
{
	return (e >= 0 && e < PV_EV_COUNT) ? events[e].phase : "invalid";
}

const char *pv_journal_event_meaning(PvJournalEvent e)
{
	return (e >= 0 && e < PV_EV_COUNT) ? events[e].meaning : "invalid";
}

int pv_journal_event_parse(const char *name)
{
	for (int i = 0; name && i < PV_EV_COUNT; i++)
		if (strcmp(events[i].name, name) == 0)
			return i;
	return -1;
}
