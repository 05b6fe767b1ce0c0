// Package guide owns guide sessions: timed help over live video between a
// user and a mate (a friend or an expert), paid for in tickets.
//
// It matches users with mates (quick connect: the best-ranked available
// mate or a named friend; shake: a random available mate), pushes the
// request to the mate, creates the session (gs_seq) and its video room
// g-{gs_seq} on approval, starts the guide history (gh_seq) when the user
// receives the mate's stream, and keeps the clock: every ticket buys
// Config.TicketDuration, both sides are warned Config.WarnBefore ahead of
// the end, an extension spends another ticket, and the guide completes by
// itself at expiry, when a side drops out of the video room, or when both
// apps stop checking in. Whichever way it ends, completion happens once.
//
// It knows nothing of GORM, Redis or STOMP: persistence is the Store
// interface (implemented by package store), pushes go through Notifier,
// and the video room is closed through VideoRooms.
package guide
