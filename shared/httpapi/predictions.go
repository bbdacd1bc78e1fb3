package httpapi

import (
	"maps"
	"net/http"
	"slices"

	"github.com/unifiedprofiles/up/shared/errcode"
	"github.com/unifiedprofiles/up/shared/predict"
	"github.com/unifiedprofiles/up/shared/workspace"
)

// Predictions (ARCHITECTURE.md section 5): …/spaces/{sp}/predictions[/{id}[/train]].

// pred checks the space is the caller's before anything else, so that another tenant learns
// nothing (not even whether predictions are served here), then runs h on the service.
func (a *admin) pred(h func(w http.ResponseWriter, r *http.Request, p workspace.Principal, svc *predict.Service) error) authed {
	return func(w http.ResponseWriter, r *http.Request, p workspace.Principal) error {
		if _, err := a.ws.GetSpace(r.Context(), p, r.PathValue("ws"), r.PathValue("sp")); err != nil {
			return err
		}
		if a.predictions == nil {
			return errcode.New(errcode.Internal, "predictions_not_configured", "this deployment does not run predictions")
		}
		return h(w, r, p, a.predictions)
	}
}

func (a *admin) listPredictions(w http.ResponseWriter, r *http.Request, p workspace.Principal, svc *predict.Service) error {
	list, err := svc.List(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"predictions": list})
	return nil
}

// createPrediction answers 201 with the prediction in status training: its first run is
// queued at once and ends ready or waiting_for_data (with each requirement) in the
// background. It takes one of the workspace's prediction slots (403 entitlement_exceeded).
func (a *admin) createPrediction(w http.ResponseWriter, r *http.Request, p workspace.Principal, svc *predict.Service) error {
	wsID, spID := r.PathValue("ws"), r.PathValue("sp")
	var in predict.Spec
	if err := decode(w, r, &in); err != nil {
		return err
	}
	// The custom traits the space's data carried: the score's key may not hide one.
	sources, err := a.ws.ListSources(r.Context(), p, wsID)
	if err != nil {
		return err
	}
	seen, err := a.seenFields(r.Context(), p, wsID, spID, sources)
	if err != nil {
		return err
	}
	pred, err := svc.Create(r.Context(), p, wsID, spID, in, slices.Collect(maps.Keys(seen.Traits))...)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, pred)
	return nil
}

func (a *admin) getPrediction(w http.ResponseWriter, r *http.Request, p workspace.Principal, svc *predict.Service) error {
	pred, err := svc.Get(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pred)
	return nil
}

// deletePrediction answers 204: the score leaves the profiles at once and the slot is free.
func (a *admin) deletePrediction(w http.ResponseWriter, r *http.Request, p workspace.Principal, svc *predict.Service) error {
	if err := svc.Delete(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// trainPrediction is "train now": 202 with the prediction, whose next run (at once, or right
// after the one under way) trains and scores.
func (a *admin) trainPrediction(w http.ResponseWriter, r *http.Request, p workspace.Principal, svc *predict.Service) error {
	pred, err := svc.TrainNow(r.Context(), p, r.PathValue("ws"), r.PathValue("sp"), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, pred)
	return nil
}
