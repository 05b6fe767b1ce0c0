package chat

import (
	"errors"
	"net/http"
	"strconv"
)

// The REST calls of the deployed CS-talk counselor console, served beside
// cstalk's own /api/ so that console works unchanged (the chat contract,
// "Compatibility with the deployed CS-talk apps"). Each is a thin route onto
// an operation cstalk already has: the one login (and its throttle), the
// room objects of ROOM_DETAIL, ASSIGN. Errors, authentication and company
// scoping are those of the rest of the API.

// consoleQueries maps the console's ?queryId= to the room status it lists.
var consoleQueries = map[string]RoomStatus{
	"findReadyState": StatusWaiting,
	"findIngState":   StatusInProgress,
	"findCloseState": StatusEnded,
}

func (a *api) consoleRoutes(route func(method, path string, h http.HandlerFunc)) {
	route(http.MethodPost, "/auth/login", a.login)
	route(http.MethodGet, "/auth/profile", a.me)
	route(http.MethodGet, "/api/room", a.consoleRooms)
	route(http.MethodPost, "/api/room/{id}/matchRoom", a.matchRoom)
	route(http.MethodGet, "/api/room/{id}/findSearchJoinHistory", a.joinHistory)
	route(http.MethodGet, "/api/customer/{number}/contracts", a.contracts)
}

// consoleRooms is GET /api/rooms?status= answered as the console expects:
// a flat array.
func (a *api) consoleRooms(w http.ResponseWriter, r *http.Request) {
	m := a.member(w, r)
	if m == nil {
		return
	}
	status, ok := consoleQueries[r.URL.Query().Get("queryId")]
	if !ok {
		a.fail(w, r, http.StatusBadRequest, "api_bad_query_id")
		return
	}
	if rooms, ok := a.roomList(w, r, m, status); ok {
		a.writeJSON(w, http.StatusOK, rooms)
	}
}

// matchRoom is ASSIGN over REST: the same operation, announced the same way.
func (a *api) matchRoom(w http.ResponseWriter, r *http.Request) {
	m := a.member(w, r)
	if m == nil {
		return
	}
	id, ok := positiveID(r.PathValue("id"))
	if !ok {
		a.fail(w, r, http.StatusNotFound, "api_room_not_found")
		return
	}
	detail, err := a.s.AssignRoom(r.Context(), m, id)
	switch {
	case errors.Is(err, ErrNotFound):
		a.fail(w, r, http.StatusNotFound, "api_room_not_found")
	case errors.Is(err, ErrRoomEnded):
		a.fail(w, r, http.StatusConflict, "api_room_ended")
	case errors.Is(err, ErrRoomTaken):
		a.fail(w, r, http.StatusConflict, "api_room_taken")
	case err != nil:
		a.internal(w, r, "match room", err)
	default:
		a.writeJSON(w, http.StatusOK, detail)
	}
}

// joinHistory lists the rooms the room's customer had before it, newest
// first.
func (a *api) joinHistory(w http.ResponseWriter, r *http.Request) {
	_, room := a.roomOfMember(w, r)
	if room == nil {
		return
	}
	limit, ok := limitParam(r.URL.Query().Get("limit"), roomListDefault, roomListMax)
	if !ok {
		a.fail(w, r, http.StatusBadRequest, "api_bad_limit")
		return
	}
	rooms, err := a.s.store.CustomerRooms(r.Context(), room.CustomerID, room.ID, limit)
	if err != nil {
		a.internal(w, r, "customer rooms", err)
		return
	}
	if out, ok := a.roomPayloads(w, r, rooms); ok {
		a.writeJSON(w, http.StatusOK, out)
	}
}

// contracts lists a customer's contracts from the member's company's own
// systems (Company.ContractsURL); none when the company has not set one.
func (a *api) contracts(w http.ResponseWriter, r *http.Request) {
	m := a.member(w, r)
	if m == nil {
		return
	}
	number := r.PathValue("number")
	if !isDigits(number) || len(number) > maxMemberNumberDigits {
		a.fail(w, r, http.StatusBadRequest, "api_bad_member_number")
		return
	}
	company, err := a.s.store.Company(r.Context(), m.CompanyID)
	if err != nil {
		a.internal(w, r, "company", err)
		return
	}
	list, err := a.contractSource.fetch(r.Context(), company, number)
	switch {
	case errors.Is(err, errContractsBusy):
		w.Header().Set("Retry-After", "1")
		a.fail(w, r, http.StatusServiceUnavailable, "api_contracts_busy")
	case errors.Is(err, errContractsTimeout):
		a.log.Warn("contracts endpoint timed out", "company", company.ID, "err", err)
		a.fail(w, r, http.StatusGatewayTimeout, "api_contracts_timeout")
	case errors.Is(err, errContractsFailed):
		a.log.Warn("contracts endpoint failed", "company", company.ID, "err", err)
		a.fail(w, r, http.StatusBadGateway, "api_contracts_failed")
	case err != nil:
		a.internal(w, r, "contracts of customer "+strconv.Quote(number), err)
	default:
		a.writeJSON(w, http.StatusOK, list)
	}
}
